//! Connections: accepting them, and keeping a flood of them from starving
//! the server.
//!
//! axum's own `serve` has no timeouts and no limit, so ~20,000 idle
//! connections used every file descriptor and `/health` stopped answering.
//! Here each connection is served by hyper's HTTP/1 with
//! - a header-read timeout (`header_read_timeout`): a client that does not
//!   send a whole request head in time is dropped (slow-loris);
//! - an idle timeout (`idle_timeout`): a connection with no request under
//!   way and no byte read or written for that long is closed;
//! - a cap (`max_connections`, also kept below the process's file limit):
//!   at the cap, the connections idle the longest are closed to make room,
//!   so a new client (a health check, an operator) is still served; only
//!   when every connection has a request under way is a new one refused.
//!
//! Activity is what the socket sees (reads and writes) plus requests under
//! way — until their answer's body has been sent, so a live event stream
//! is never taken for idle nor closed to make room.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower_service::Service;

/// How connections are limited.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to receive a request's head.
    pub header_read_timeout: Duration,
    /// Time a connection may sit with nothing under way.
    pub idle_timeout: Duration,
}

/// One open connection, as the table sees it.
struct Conn {
    /// Milliseconds after the table's start of the last read or write.
    last: AtomicU64,
    /// Requests under way.
    active: AtomicUsize,
    /// Close now (evicted to make room).
    evict: Notify,
}

/// The open connections.
struct Table {
    start: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Table {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn len(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            last: AtomicU64::new(self.now()),
            active: AtomicUsize::new(0),
            evict: Notify::new(),
        });
        if let Ok(mut conns) = self.conns.lock() {
            conns.insert(id, conn.clone());
        }
        (id, conn)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.remove(&id);
        }
    }

    /// Closes up to `n` connections with no request under way, those idle
    /// the longest first; how many.
    fn evict_idle(&self, n: usize) -> usize {
        let Ok(mut conns) = self.conns.lock() else {
            return 0;
        };
        let mut idle: Vec<(u64, u64)> = conns
            .iter()
            .filter(|(_, c)| c.active.load(Ordering::Acquire) == 0)
            .map(|(id, c)| (c.last.load(Ordering::Relaxed), *id))
            .collect();
        let n = n.min(idle.len());
        if n == 0 {
            return 0;
        }
        if n < idle.len() {
            idle.select_nth_unstable(n - 1);
        }
        for (_, id) in &idle[..n] {
            if let Some(c) = conns.remove(id) {
                c.evict.notify_one();
            }
        }
        n
    }
}

/// A socket that records when it last read or wrote.
struct Tracked {
    io: TcpStream,
    conn: Arc<Conn>,
    table: Arc<Table>,
}

impl Tracked {
    fn touch(&self) {
        self.conn.last.store(self.table.now(), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Counts a request under way while it lives.
struct Active(Arc<Conn>);

/// An answer's body, which keeps its request counted as under way until
/// it has been sent (or dropped).
struct Sending {
    body: Body,
    _active: Active,
}

impl hyper::body::Body for Sending {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `stop` is set, then lets the
/// connections finish the requests under way and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<Option<i32>>,
) {
    let table = Arc::new(Table {
        start: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let mut tasks = JoinSet::new();
    // At the cap, room is made for several newcomers at once, so a flood
    // does not scan the table on every accept.
    let batch = (limits.max_connections / 16).max(1);
    loop {
        while tasks.try_join_next().is_some() {}
        // A stop set before this loop first waited is seen here.
        if stop.borrow_and_update().is_some() {
            break;
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (or another passing failure):
                // make room and try again shortly.
                let closed = table.evict_idle(batch);
                tracing::warn!(error = %e, closed, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if table.len() >= limits.max_connections && table.evict_idle(batch) == 0 {
            tracing::warn!(
                peer = %addr,
                max_connections = limits.max_connections,
                "connection refused: every connection has a request under way"
            );
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            stream,
            addr,
            app.clone(),
            limits,
            table.clone(),
            stop.clone(),
        ));
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    app: Router,
    limits: Limits,
    table: Arc<Table>,
    mut stop: watch::Receiver<Option<i32>>,
) {
    let (id, conn) = table.add();
    let io = Tracked {
        io: stream,
        conn: conn.clone(),
        table: table.clone(),
    };
    let counted = conn.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        counted.active.fetch_add(1, Ordering::AcqRel);
        let active = Active(counted.clone());
        req.extensions_mut().insert(ConnectInfo(addr));
        let mut app = app.clone();
        async move {
            let response = match app.call(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(Sending {
                    body,
                    _active: active,
                })
            }))
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let mut stopping = stop.borrow().is_some();
    if stopping {
        served.as_mut().graceful_shutdown();
    }
    loop {
        let idle_ms = table
            .now()
            .saturating_sub(conn.last.load(Ordering::Relaxed));
        let idle_for = Duration::from_millis(idle_ms);
        let busy = conn.active.load(Ordering::Acquire) > 0;
        if !busy && idle_for >= limits.idle_timeout {
            tracing::debug!(peer = %addr, "closing an idle connection");
            break;
        }
        // Under way, a request holds the connection; look again later.
        let wait = if busy {
            limits.idle_timeout
        } else {
            limits.idle_timeout - idle_for
        };
        tokio::select! {
            _ = served.as_mut() => break,
            _ = conn.evict.notified() => break,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    table.remove(id);
}

/// Raises this process's soft limit of open files to its hard limit and
/// returns the soft limit now in force (`None`: unlimited or unknown).
pub fn raise_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), maximum) = (limit.current, limit.maximum) else {
        return None;
    };
    if maximum.is_none_or(|m| m > current) {
        let raised = Rlimit {
            current: maximum,
            maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return maximum;
        }
    }
    Some(current)
}
