//! API tokens, roles, and who is calling.
//!
//! A token is `glv_<id>_<secret>`: the id names it in lists and the audit
//! log, the secret (128 random bits) proves it. The store keeps only the
//! SHA-256 of the whole token, so a leaked database does not leak tokens,
//! and the token is shown once, when it is made.
//!
//! Roles: `viewer` reads; `operator` also answers runs (confirm, roll back,
//! start, resume) and changes flags; `admin` also deletes flags and manages
//! tokens. Any other role name is one of a plan's sign-off roles (`security`,
//! `tech-lead`): it reads like a viewer and may sign approvals for that role
//! only, as the token's name, who must be a member of the role in the plan.
//!
//! Tokens come as `Authorization: Bearer …` or (for OFREP clients)
//! `X-API-Key: …`. A refused token counts against the client's address:
//! after `auth_failure_limit` refusals (default [`FAILURE_LIMIT`]) within
//! [`FAILURE_WINDOW`], that address gets 429 instead of 401 for every
//! further refused token until the window ends. A valid token is still
//! checked and served: a brute force from a shared address (a NAT, a proxy,
//! the war room's own network) must not lock its people out, and with
//! 128-bit secrets the limit is there to slow and flag guessing, not to
//! make it impossible. Text not shaped like a token is refused without
//! asking the store. Verified tokens are cached for [`CACHE_TTL`], so
//! revocation takes effect within that time.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use golive_store::{Actor, Store, TokenRecord};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Refused tokens allowed per address and window before 429, by default
/// (`ServerConfig::auth_failure_limit`).
pub const FAILURE_LIMIT: u32 = 10;
/// The window of [`FAILURE_LIMIT`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a verified token is trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

/// What a token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Reads everything but the audit log.
    Viewer,
    /// Reads, answers runs and changes flags.
    Operator,
    /// Everything.
    Admin,
    /// A plan's sign-off role: reads, and signs approvals for this role.
    SignOff(String),
}

/// The least a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// No token at all.
    Public,
    /// Any valid token.
    Viewer,
    /// `operator` or `admin`.
    Operator,
    /// `admin`.
    Admin,
}

impl Need {
    /// The name used in the OpenAPI document and in refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Public => "public",
            Need::Viewer => "viewer",
            Need::Operator => "operator",
            Need::Admin => "admin",
        }
    }
}

impl Role {
    /// Parses a role name: `viewer`, `operator`, `admin`, or a sign-off role
    /// (letters, digits, `-`, `_`, at most 64). Another spelling of a
    /// built-in role (`Admin`, `VIEWER`) is refused: taken as a sign-off
    /// role, it would silently give far less (or other) rights than meant.
    pub fn parse(name: &str) -> Result<Role, String> {
        let builtin = ["viewer", "operator", "admin"]
            .into_iter()
            .find(|b| b.eq_ignore_ascii_case(name.trim()));
        match name {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other if builtin.is_some() => Err(format!(
                "`{}` is not a role; the built-in roles are lower-case: did you mean `{}`?",
                crate::error::clip(other),
                builtin.unwrap_or_default()
            )),
            other
                if !other.is_empty()
                    && other.len() <= 64
                    && other
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok(Role::SignOff(other.to_string()))
            }
            other => Err(format!(
                "`{}` is not a role: use viewer, operator, admin, or a plan's sign-off role (letters, digits, - and _)",
                crate::error::clip(other)
            )),
        }
    }

    /// Whether this role meets `need`.
    pub fn allows(&self, need: Need) -> bool {
        let rank = match self {
            Role::Viewer | Role::SignOff(_) => Need::Viewer,
            Role::Operator => Need::Operator,
            Role::Admin => Need::Admin,
        };
        rank >= need
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::SignOff(r) => r,
        })
    }
}

/// A freshly made token: the text to hand out once, and what to store.
pub struct NewSecret {
    /// `glv_<id>_<secret>`; shown once, never stored.
    pub token: String,
    /// The token's public id.
    pub id: String,
    /// What the store keeps.
    pub sha256: String,
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSecret")
            .field("id", &self.id)
            .field("token", &"<hidden>")
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a new random token.
pub fn generate() -> Result<NewSecret, getrandom::Error> {
    let mut id = [0u8; 5];
    let mut secret = [0u8; 16];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let id = hex(&id);
    let token = format!("glv_{id}_{}", hex(&secret));
    let sha256 = hash(&token);
    Ok(NewSecret { token, id, sha256 })
}

/// The SHA-256 (lowercase hex) the store keeps for a token.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Who is calling, once their token is verified.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's id.
    pub token_id: String,
    /// The token's name: a person or a service.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The client's address.
    pub source: SocketAddr,
}

impl Caller {
    /// How the audit log names this caller.
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.name.clone(),
            source: Some(self.source.to_string()),
        }
    }
}

/// Token checks with a short cache and a per-address limit on refusals.
#[derive(Default)]
pub struct Auth {
    cache: Mutex<HashMap<String, (TokenRecord, Instant)>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Auth {
    /// The 429 for an address that has had too many refusals lately.
    fn check_limit(&self, ip: IpAddr, limit: u32) -> Result<(), ApiError> {
        let Ok(failures) = self.failures.lock() else {
            return Ok(());
        };
        if let Some((since, count)) = failures.get(&ip) {
            let age = since.elapsed();
            if *count >= limit && age < FAILURE_WINDOW {
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many refused tokens from {ip}; wait before trying again"),
                );
                err.retry_after = Some((FAILURE_WINDOW - age).as_secs().max(1));
                return Err(err);
            }
        }
        Ok(())
    }

    fn record_failure(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            let now = Instant::now();
            if failures.len() > 10_000 {
                failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
            }
            let entry = failures.entry(ip).or_insert((now, 0));
            if entry.0.elapsed() >= FAILURE_WINDOW {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }

    /// Verifies the request's token and that its role meets `need`.
    pub async fn verify<S: Store>(
        &self,
        store: &S,
        headers: &HeaderMap,
        source: SocketAddr,
        need: Need,
        limit: u32,
    ) -> Result<Caller, ApiError> {
        let record = match self.token(store, headers).await {
            Ok(r) => r,
            // A missing token is no guess: it is not counted.
            Err(e) if e.status == StatusCode::UNAUTHORIZED && bearer(headers).is_some() => {
                self.check_limit(source.ip(), limit)?;
                self.record_failure(source.ip());
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let role = Role::parse(&record.role)
            .map_err(|e| ApiError::internal(format!("token {}: {e}", record.id)))?;
        if !role.allows(need) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token `{}` has role `{role}`; this needs `{}`",
                    record.name,
                    need.as_str()
                ),
            ));
        }
        Ok(Caller {
            token_id: record.id,
            name: record.name,
            role,
            source,
        })
    }

    /// Forgets the cached verification of token `id` (just revoked here):
    /// the server that revoked a token refuses it from its next request,
    /// not [`CACHE_TTL`] later. Other servers on the same database still
    /// take up to that long.
    pub fn forget(&self, id: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (record, _)| record.id != id);
        }
    }

    async fn token<S: Store>(
        &self,
        store: &S,
        headers: &HeaderMap,
    ) -> Result<TokenRecord, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let given = bearer(headers).ok_or_else(|| {
            unauthorized("this needs a token: send `Authorization: Bearer TOKEN` (make one with `golive token create`)")
        })?;
        if !well_formed(given) {
            return Err(unauthorized("unknown token"));
        }
        let digest = hash(given);
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(&digest)
                .filter(|(_, at)| at.elapsed() < CACHE_TTL)
                .map(|(r, _)| r.clone())
        });
        let record = match cached {
            Some(r) => r,
            None => {
                let found = store
                    .token_by_secret(&digest)
                    .await?
                    .ok_or_else(|| unauthorized("unknown token"))?;
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() > 10_000 {
                        cache.clear();
                    }
                    cache.insert(digest, (found.clone(), Instant::now()));
                }
                found
            }
        };
        if record.revoked_at.is_some() {
            return Err(unauthorized("this token was revoked"));
        }
        if record.expires_at.is_some_and(|t| t <= Timestamp::now()) {
            return Err(unauthorized("this token has expired"));
        }
        Ok(record)
    }
}

/// Whether `token` is shaped like the tokens [`generate`] makes:
/// `glv_`, 10 hex digits, `_`, 32 hex digits.
fn well_formed(token: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    token
        .strip_prefix("glv_")
        .and_then(|rest| rest.split_once('_'))
        .is_some_and(|(id, secret)| hex(id, 10) && hex(secret, 32))
}

/// The token in `Authorization: Bearer …` or `X-API-Key: …`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
            .filter(|t| !t.is_empty());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// An extractor that verifies the token for the role rank `N`
/// (`Need` as a number: 1 viewer, 2 operator, 3 admin).
pub struct Authed<const N: u8>(pub Caller);

/// Any valid token.
pub type AnyToken = Authed<1>;
/// An operator or admin token.
pub type OperatorToken = Authed<2>;
/// An admin token.
pub type AdminToken = Authed<3>;

const fn need_of(n: u8) -> Need {
    match n {
        0 => Need::Public,
        1 => Need::Viewer,
        2 => Need::Operator,
        _ => Need::Admin,
    }
}

fn source_of(parts: &Parts) -> SocketAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl<const N: u8> FromRequestParts<AppState> for Authed<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source = source_of(parts);
        let caller = state
            .auth
            .verify(
                state.store(),
                &parts.headers,
                source,
                need_of(N),
                state.config.auth_failure_limit,
            )
            .await?;
        Ok(Authed(caller))
    }
}

/// The caller of a public route: nobody without a token; with one, it
/// must be valid (any role), as on every other route.
pub struct MaybeToken(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer(&parts.headers).is_none() {
            return Ok(MaybeToken(None));
        }
        let Authed(caller) = AnyToken::from_request_parts(parts, state).await?;
        Ok(MaybeToken(Some(caller)))
    }
}
