// golive's war room: a small app over the JSON API (served by `golive serve`
// at /ui; see crates/golive-server/src/web.rs and docs/design/web.md).
// The token lives in this tab's sessionStorage and goes in the
// Authorization header only: never in a URL. The API's role checks are the
// gate; the page only hides what the token's role cannot do.
"use strict";

const KEY = "golive.token";
const $ = (sel, root) => (root || document).querySelector(sel);
let me = null; // /api/whoami
let page = null; // the current page's teardown

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function toast(text, bad) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await resp.text();
  let data = text;
  try { data = JSON.parse(text); } catch (_) { /* text */ }
  if (!resp.ok) {
    const msg = (data && data.error && data.error.message) || resp.status + " " + resp.statusText;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// Reads an SSE stream with fetch (EventSource cannot send a header) and
// calls onEvent(name, data, id) per frame; reconnects with Last-Event-ID.
function stream(path, onEvent) {
  const ctl = new AbortController();
  let last = null;
  let stopped = false;
  (async () => {
    while (!stopped) {
      try {
        const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY), Accept: "text/event-stream" };
        if (last) headers["Last-Event-ID"] = last;
        const resp = await fetch(path, { headers, signal: ctl.signal, cache: "no-store" });
        if (!resp.ok) throw new Error("stream: " + resp.status);
        document.body.dataset.live = "yes";
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let at;
          while ((at = buf.search(/\r?\n\r?\n/)) >= 0) {
            const frame = buf.slice(0, at);
            buf = buf.slice(at).replace(/^\r?\n\r?\n/, "");
            let name = "message", data = [], id = null;
            for (const line of frame.split(/\r?\n/)) {
              if (line.startsWith(":")) continue;
              const c = line.indexOf(":");
              const field = c < 0 ? line : line.slice(0, c);
              let val = c < 0 ? "" : line.slice(c + 1);
              if (val.startsWith(" ")) val = val.slice(1);
              if (field === "event") name = val;
              else if (field === "data") data.push(val);
              else if (field === "id") id = val;
            }
            if (id !== null) last = id;
            if (data.length) onEvent(name, data.join("\n"), id);
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      document.body.dataset.live = "no";
      if (!stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return () => { stopped = true; ctl.abort(); };
}

// ---- time ----
function tclock(t0, now) {
  if (!t0) return "no T-0";
  const s = Math.round((now - Date.parse(t0)) / 1000);
  const a = Math.abs(s);
  const pad = (n) => String(n).padStart(2, "0");
  const d = Math.floor(a / 86400);
  const text = (d ? d + "d " : "") + pad(Math.floor((a % 86400) / 3600)) + ":" + pad(Math.floor((a % 3600) / 60)) + ":" + pad(a % 60);
  return (s < 0 ? "T-" : "T+") + text;
}
function offset(sec) {
  if (sec === null || sec === undefined) return "";
  const a = Math.abs(sec);
  const parts = [];
  if (a >= 86400) parts.push(Math.floor(a / 86400) + "d");
  if (a % 86400 >= 3600) parts.push(Math.floor((a % 86400) / 3600) + "h");
  if (a % 3600 >= 60) parts.push(Math.floor((a % 3600) / 60) + "m");
  if (a % 60 || !parts.length) parts.push((a % 60) + "s");
  return (sec < 0 ? "T-" : "T+") + parts.join("");
}
function clock(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return isNaN(d) ? String(ts) : d.toISOString().slice(11, 19) + "Z";
}

// ---- sign-in ----
function signIn(err) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-h" },
    h("h1", { id: "signin-h" }, "Sign in to the war room"),
    h("p", {}, "Paste an API token (", h("code", {}, "golive token create"), "). It is kept in this tab only."),
    h("label", { for: "token" }, "API token"), input,
    err ? h("p", { class: "error", role: "alert" }, err) : null,
    h("button", { type: "submit", id: "signin" }, "Sign in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    await start();
  });
  show(form);
  input.focus();
}

function show(...nodes) {
  const main = $("#main");
  main.replaceChildren(...nodes);
}

async function start() {
  if (!sessionStorage.getItem(KEY)) return signIn();
  try {
    me = await api("GET", "/api/whoami");
  } catch (e) {
    sessionStorage.removeItem(KEY);
    return signIn(e.status === 401 ? "That token is not valid (unknown, expired or revoked)." : e.message);
  }
  $("#who").textContent = me.name + " · " + me.role;
  $("#nav").hidden = false;
  $("#nav-audit").hidden = !me.may.audit;
  $("#signout").hidden = false;
  document.body.dataset.role = me.role;
  route();
}

function route() {
  if (page) { page(); page = null; }
  if (!me) return start();
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("#nav a")) {
    a.removeAttribute("aria-current");
    if (a.getAttribute("href") === "#/" + (parts[0] === "run" ? "" : parts[0] || "")) a.setAttribute("aria-current", "page");
  }
  if (parts[0] === "run" && parts[1] && parts[2] === "record") return recordPage(parts[1]);
  if (parts[0] === "run" && parts[1] && parts[2] === "readiness") return readinessPage(parts[1]);
  if (parts[0] === "run" && parts[1]) return runPage(parts[1]);
  if (parts[0] === "flags") return flagsPage();
  if (parts[0] === "audit") return auditPage();
  return runsPage();
}

// ---- runs ----
async function runsPage() {
  const body = h("tbody");
  show(h("h1", {}, "Runs"),
    h("table", { class: "list", id: "runs" }, h("caption", {}, "Go-lives, newest first"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Plan"), h("th", { scope: "col" }, "State"),
        h("th", { scope: "col" }, "T-0"), h("th", { scope: "col", class: "wide" }, "Last change"))),
      body));
  const load = async () => {
    const { runs } = await api("GET", "/api/runs?limit=50");
    body.replaceChildren(...runs.map((r) => h("tr", {},
      h("td", {}, h("a", { href: "#/run/" + encodeURIComponent(r.id) }, r.plan_name), " ", h("code", {}, r.id)),
      h("td", {}, h("span", { class: "state s-" + r.status }, r.status)),
      h("td", {}, r.t0 ? tclock(r.t0, Date.now()) : "—"),
      h("td", { class: "wide" }, clock(r.updated_at)))));
    if (!runs.length) body.append(h("tr", {}, h("td", { colspan: 4 }, "No runs yet.")));
  };
  try { await load(); } catch (e) { toast(e.message, true); }
  const timer = setInterval(() => load().catch(() => {}), 5000);
  page = () => clearInterval(timer);
}

// ---- a run ----
function runPage(id) {
  const enc = encodeURIComponent(id);
  const st = { outline: null, status: null, weights: {}, analyses: {}, decisions: {}, incidents: {}, watch: null, rendered: 0, parts: {} };
  const root = h("div", { class: "run", "data-run": id });
  show(root);
  const clockEl = h("p", { class: "tclock", id: "tclock", "aria-label": "Time relative to T-0" });
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      try {
        st.status = await api("GET", "/api/runs/" + enc + "/status");
        render();
      } catch (e) { toast(e.message, true); }
    }, 30);
  };
  const onEvent = (name, data) => {
    if (name !== "run") return;
    let e;
    try { e = JSON.parse(data); } catch (_) { return; }
    const item = e.item_id || "";
    const push = (map, v) => { (map[item] = map[item] || []).push(v); };
    if (e.kind === "rollout.weight") push(st.weights, Object.assign({ at: e.at }, e.data));
    else if (e.kind === "rollout.analysis") push(st.analyses, Object.assign({ at: e.at }, e.data));
    else if (e.kind === "rollout.decision") push(st.decisions, Object.assign({ at: e.at }, e.data));
    else if (e.kind === "watch.started") st.watch = { since: e.at, window_s: e.data.window_s, serving: e.data.serving };
    else if (e.kind === "watch.ended") st.watch = null;
    else if (e.kind.startsWith("incident.")) {
      const inc = e.data.incident || e.data.id;
      if (inc) {
        const cur = st.incidents[inc] || { id: inc, item, state: "open", title: "" };
        if (e.kind === "incident.opened") Object.assign(cur, { title: e.data.title || e.data.check || inc, at: e.at, evidence: e.data.evidence });
        if (e.kind === "incident.acknowledged") cur.state = "acknowledged by " + (e.data.by || "someone");
        if (e.kind === "incident.resolved") cur.state = "resolved";
        if (e.kind === "incident.escalated") cur.level = e.data.name || e.data.level;
        st.incidents[inc] = cur;
      }
    }
    refresh();
  };
  const tick = setInterval(() => {
    if (st.status) clockEl.textContent = tclock(st.status.run.t0, Date.now());
  }, 1000);
  let stop = () => {};
  (async () => {
    try {
      st.outline = await api("GET", "/api/runs/" + enc + "/outline");
      st.status = await api("GET", "/api/runs/" + enc + "/status");
      render();
      stop = stream("/api/events?run=" + enc, onEvent);
    } catch (e) {
      show(h("h1", {}, "Run " + id), h("p", { class: "error", role: "alert" }, e.message));
    }
  })();
  page = () => { stop(); clearInterval(tick); if (pending) clearTimeout(pending); };

  async function act(label, method, path, body, btn) {
    if (btn) btn.disabled = true;
    try {
      await api(method, path, body);
      toast(label + ": done");
      refresh();
    } catch (e) {
      toast(label + ": " + e.message, true);
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  function render() {
    const s = st.status;
    if (!s || !st.outline) return;
    // Keep what a person is typing across live re-renders.
    const typed = {};
    for (const el of root.querySelectorAll("input[id], textarea[id]")) typed[el.id] = el.value;
    const focused = document.activeElement && document.activeElement.id;
    const byId = {};
    for (const it of s.items) byId[it.id] = it;
    const waiting = {};
    for (const a of s.awaiting) waiting[a.item] = a;
    const run = s.run;
    clockEl.textContent = tclock(run.t0, Date.now());
    // Each section is rebuilt only when what it shows changed, so a button
    // a person is about to press is not swapped under their pointer.
    const want = [];
    const part = (name, sig, build) => {
      const key = JSON.stringify(sig);
      let cur = st.parts[name];
      if (!cur || cur.key !== key) {
        cur = { key, node: build() };
        st.parts[name] = cur;
      }
      want.push(cur.node);
    };
    part("head", [run.status, s.phase, st.outline.name], () => h("div", { class: "runhead" },
      h("h1", {}, st.outline.name, " ", h("code", {}, run.id)),
      h("p", {}, "State ", h("span", { class: "state s-" + run.status, id: "run-state" }, run.status),
        s.phase ? [" · phase ", h("strong", { id: "run-phase" }, s.phase)] : null,
        " · ", h("a", { href: "#/run/" + enc + "/readiness" }, "readiness"),
        " · ", h("a", { href: "#/run/" + enc + "/record" }, "the record")),
      clockEl));
    if (s.rollback_requested) part("rb", s.rollback_requested, () => h("p", { class: "banner bad", role: "alert" },
      "Rollback requested by " + s.rollback_requested.by + ": " + (s.rollback_requested.reason || "")));
    if (st.watch && !isFinal(run.status)) part("watch", st.watch, () => h("p", { class: "banner", id: "watch", role: "status" },
      "Watch window open since " + clock(st.watch.since) + ", until " +
      clock(new Date(Date.parse(st.watch.since) + st.watch.window_s * 1000).toISOString()) +
      (st.watch.serving === "previous" ? " (watching the previous version)" : "")));
    // Promote, pause, resume and abort act on a rollout under way; a
    // rollback is always on offer until the run ends.
    const rolling = st.outline.phases.some((p) => p.items.some((i) => i.kind === "rollout" && byId[i.id] && ["running", "waiting"].includes(byId[i.id].status)));
    if (me.may.operate && !isFinal(run.status)) part("controls", [rolling], () => controls(rolling));
    if (s.awaiting.length) part("awaiting", s.awaiting, () => h("section", { "aria-labelledby": "await-h", class: "card" },
      h("h2", { id: "await-h" }, "Waiting for"),
      h("ul", { id: "awaiting" }, s.awaiting.map((a) => h("li", { "data-item": a.item },
        h("strong", {}, a.item), " (" + a.kind + "): ", a.who || "")))));
    const incs = Object.values(st.incidents);
    if (incs.length) part("incidents", incs, () => h("section", { "aria-labelledby": "inc-h", class: "card" },
      h("h2", { id: "inc-h" }, "Incidents"),
      h("ul", { id: "incidents" }, incs.map((i) => h("li", {},
        h("strong", {}, i.title), " · ", i.state, i.level ? " · level " + i.level : "", " ",
        me.may.operate && i.state === "open"
          ? h("button", { type: "button", class: "act", "data-action": "ack", onclick: (ev) => act("Acknowledge", "POST", "/api/runs/" + enc + "/incidents/" + encodeURIComponent(i.id) + "/ack", {}, ev.target) }, "Acknowledge " + i.id)
          : null)))));
    for (const [item, ws] of Object.entries(st.weights)) {
      part("rollout-" + item, [ws.length, (st.analyses[item] || []).length, (st.decisions[item] || []).length], () => rolloutPanel(item, ws));
    }
    part("timeline", [s.items, s.awaiting, s.phase], () => h("section", { "aria-labelledby": "tl-h" }, h("h2", { id: "tl-h" }, "Timeline"),
      h("ol", { class: "timeline" }, st.outline.phases.map((p) => phaseView(p, byId, waiting, run)))));
    want.forEach((node, i) => {
      if (root.children[i] !== node) root.insertBefore(node, root.children[i] || null);
    });
    while (root.children.length > want.length) root.lastElementChild.remove();
    for (const [k, v] of Object.entries(typed)) { const el = document.getElementById(k); if (el && !el.value) el.value = v; }
    if (focused && document.activeElement !== document.getElementById(focused)) { const el = document.getElementById(focused); if (el) el.focus(); }
    st.rendered += 1;
    root.dataset.renders = st.rendered;
  }

  function isFinal(status) {
    return ["succeeded", "failed", "aborted", "rolled-back"].includes(status);
  }

  function controls(rolling) {
    const reason = h("input", { id: "steer-reason", type: "text", autocomplete: "off" });
    const b = (label, path, needsReason, cls) => h("button", {
      type: "button", class: "act " + (cls || ""), "data-action": path,
      onclick: (ev) => {
        const r = reason.value.trim();
        if (needsReason && !r) { toast(label + ": give a reason first", true); reason.focus(); return; }
        act(label, "POST", "/api/runs/" + enc + "/" + path, r ? { reason: r } : {}, ev.target);
      },
    }, label);
    return h("section", { class: "card controls", "aria-labelledby": "ctl-h" },
      h("h2", { id: "ctl-h" }, "Steer"),
      h("label", { for: "steer-reason" }, "Reason (needed to abort or roll back)"), reason,
      h("div", { class: "buttons" },
        rolling ? [b("Promote", "promote"), b("Pause", "pause"), b("Resume rollout", "resume-rollout"),
          b("Abort rollout", "abort", true, "danger")] : null,
        b("Roll back", "rollback", true, "danger")));
  }

  function phaseView(p, byId, waiting, run) {
    const its = p.items.map((i) => byId[i.id]).filter(Boolean);
    const started = its.map((i) => i.started_at).filter(Boolean).sort()[0];
    const ended = its.length && its.every((i) => i.finished_at) ? its.map((i) => i.finished_at).sort().pop() : null;
    let planned = "";
    if (p.at !== null && p.at !== undefined) {
      planned = offset(p.at) + (run.t0 ? " (" + clock(new Date(Date.parse(run.t0) + p.at * 1000)) + ")" : "");
    }
    return h("li", { class: "phase" + (st.status.phase === p.title ? " current" : "") },
      h("h3", {}, p.title),
      h("p", { class: "times" }, "Planned ", planned || "—", " · actual ", started ? clock(started) : "not started", ended ? " – " + clock(ended) : ""),
      h("ul", { class: "items" }, p.items.map((i) => itemView(i, byId[i.id], waiting[i.id]))));
  }

  function itemView(i, state, wait) {
    const status = state ? state.status : "pending";
    const li = h("li", { class: "item", id: "item-" + i.id, "data-item": i.id, "data-state": status },
      h("div", { class: "line" },
        h("span", { class: "state s-" + status, "data-role": "state" }, status),
        h("span", { class: "title" }, i.title, " ", h("code", {}, i.id)),
        h("span", { class: "owner" }, i.owner ? "owner " + i.owner + (i.members.length ? " (" + i.members.join(", ") + ")" : "") : ""),
        state && state.started_at ? h("span", { class: "times" }, clock(state.started_at) + (state.finished_at ? " – " + clock(state.finished_at) : "")) : null),
      wait ? h("p", { class: "wait" }, "Waiting for " + (wait.who || "someone")) : null);
    if (wait && wait.kind === "task" && me.may.operate) li.append(confirmForm(i));
    if (wait && wait.kind === "approval" && me.may.sign_as && (!wait.roles || wait.roles.some((r) => (r.role || r) === me.may.sign_as))) li.append(signForm(i));
    return li;
  }

  function confirmForm(i) {
    const ev = h("input", { id: "evidence-" + i.id, type: "text", autocomplete: "off" });
    const fields = h("textarea", { id: "fields-" + i.id, rows: 2 });
    const form = h("form", { class: "answer", "aria-label": "Confirm " + i.title },
      h("label", { for: ev.id }, "Evidence (link, ticket, note)"), ev,
      h("label", { for: fields.id }, "Record fields (one name=value a line)"), fields,
      h("button", { type: "submit", class: "act", "data-action": "confirm" }, "Confirm " + i.id));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const f = {};
      for (const line of fields.value.split("\n")) {
        const at = line.indexOf("=");
        if (at > 0) f[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      const body = { fields: f };
      if (ev.value.trim()) body.evidence = ev.value.trim();
      act("Confirm " + i.id, "POST", "/api/runs/" + enc + "/items/" + encodeURIComponent(i.id) + "/confirm", body, e.submitter);
    });
    return form;
  }

  function signForm(i) {
    const comment = h("input", { id: "comment-" + i.id, type: "text", autocomplete: "off" });
    const path = "/api/runs/" + enc + "/items/" + encodeURIComponent(i.id) + "/";
    return h("div", { class: "answer", role: "group", "aria-label": "Sign off " + i.title },
      h("label", { for: comment.id }, "Comment (needed to reject)"), comment,
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "act", "data-action": "approve", onclick: (e) => act("Approve " + i.id, "POST", path + "approve", comment.value.trim() ? { comment: comment.value.trim() } : {}, e.target) }, "Approve as " + me.may.sign_as),
        h("button", { type: "button", class: "act danger", "data-action": "reject", onclick: (e) => {
          if (!comment.value.trim()) { toast("Reject: say why in the comment", true); comment.focus(); return; }
          act("Reject " + i.id, "POST", path + "reject", { comment: comment.value.trim() }, e.target);
        } }, "Reject")));
  }

  function rolloutPanel(item, ws) {
    const last = ws[ws.length - 1];
    const analyses = st.analyses[item] || [];
    const decisions = st.decisions[item] || [];
    const metrics = {};
    for (const a of analyses) {
      const ev = a.evaluation || {};
      for (const [m, v] of Object.entries(ev.values || {})) (metrics[m] = metrics[m] || []).push({ at: Date.parse(a.at), stable: v.stable, canary: v.canary });
    }
    const lastEval = analyses.length ? analyses[analyses.length - 1].evaluation || {} : {};
    const thresholds = {};
    for (const r of lastEval.rule_statuses || []) {
      for (const m of Object.keys(metrics)) if (r.rule.includes(m) && typeof r.against === "number" && !/stable\./.test(r.rule)) thresholds[m] = { value: r.against, rule: r.rule };
    }
    return h("section", { class: "card rollout", id: "rollout-" + item, "aria-labelledby": "ro-h-" + item, "data-evaluations": analyses.length },
      h("h2", { id: "ro-h-" + item }, "Rollout ", h("code", {}, item), " · canary at ", h("strong", { class: "weight" }, last.weight + "%")),
      h("ol", { class: "steps", "aria-label": "Weights set" }, ws.map((w) => h("li", {}, "step " + (w.step + 1) + ": " + w.weight + "% at " + clock(w.at) + (w.detail && typeof w.detail === "string" ? " (" + w.detail + ")" : "")))),
      h("div", { class: "charts" }, Object.entries(metrics).map(([m, pts]) => chart(item, m, pts, thresholds[m]))),
      h("h3", {}, "Decisions"),
      h("ul", { class: "decisions" },
        decisions.map((d) => h("li", {}, clock(d.at) + " · " + (d.action || d.decision || "decision") + (d.by ? " by " + d.by : "") + (d.why ? ": " + d.why : "") + (d.weight !== undefined ? " (at " + d.weight + "%)" : ""))),
        lastEval.decision ? h("li", { class: "latest" }, "latest evaluation: " + lastEval.decision.decision + (lastEval.decision.why ? ": " + lastEval.decision.why : "")) : null));
  }
}

// The points of one side of a chart, at most two a pixel column: each
// column's lowest and highest, in time order. A long rollout's thousands
// of evaluations draw as fast as a short one's, and no spike is dropped.
function thin(pts, side, x) {
  const out = [];
  let col = null, lo = null, hi = null;
  const flush = () => {
    if (!lo) return;
    if (lo === hi) out.push(lo);
    else if (lo.at <= hi.at) out.push(lo, hi);
    else out.push(hi, lo);
  };
  for (const p of pts) {
    if (typeof p[side] !== "number") continue;
    const c = Math.floor(x(p.at));
    if (c !== col) { flush(); col = c; lo = hi = p; continue; }
    if (p[side] < lo[side]) lo = p;
    if (p[side] > hi[side]) hi = p;
  }
  flush();
  return out;
}

// A line chart of one metric, canary against stable, with its threshold.
function chart(item, metric, pts, threshold) {
  const W = 320, H = 120, P = 4;
  const NS = "http://www.w3.org/2000/svg";
  const vals = pts.flatMap((p) => [p.stable, p.canary]).filter((v) => typeof v === "number");
  // No spread: a long rollout has more values than a call takes arguments.
  let lo = vals.reduce((a, v) => Math.min(a, v), 0);
  let hi = vals.reduce((a, v) => Math.max(a, v), lo + 1e-9);
  // A threshold far above the data is drawn at the top edge (and said in
  // the caption), so the two lines keep a readable scale.
  if (threshold && threshold.value <= hi * 2) hi = Math.max(hi, threshold.value);
  if (hi === lo) hi = lo + 1;
  hi += (hi - lo) * 0.1;
  const t0 = pts[0].at, t1 = Math.max(pts[pts.length - 1].at, t0 + 1);
  const x = (t) => P + ((t - t0) / (t1 - t0)) * (W - 2 * P);
  const y = (v) => H - P - ((v - lo) / (hi - lo)) * (H - 2 * P);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("role", "img");
  const lastPt = pts[pts.length - 1];
  const fmt = (v) => (typeof v === "number" ? +v.toPrecision(4) : "no data");
  svg.setAttribute("aria-label", metric + ": canary " + fmt(lastPt.canary) + ", stable " + fmt(lastPt.stable) + (threshold ? ", threshold " + fmt(threshold.value) : ""));
  const line = (side, cls) => {
    const drawn = thin(pts, side, x);
    const d = drawn.map((p) => x(p.at).toFixed(1) + "," + y(p[side]).toFixed(1)).join(" ");
    const pl = document.createElementNS(NS, "polyline");
    pl.setAttribute("points", d);
    pl.setAttribute("class", cls);
    pl.setAttribute("data-points", String(pts.filter((p) => typeof p[side] === "number").length));
    pl.setAttribute("data-drawn", String(drawn.length));
    svg.append(pl);
  };
  if (threshold) {
    const l = document.createElementNS(NS, "line");
    l.setAttribute("x1", P); l.setAttribute("x2", W - P);
    const ty = Math.max(P, y(threshold.value));
    l.setAttribute("y1", ty); l.setAttribute("y2", ty);
    l.setAttribute("class", "threshold");
    svg.append(l);
  }
  line("stable", "stable");
  line("canary", "canary");
  return h("figure", { class: "chart", "data-metric": metric, "data-points": pts.length },
    svg,
    h("figcaption", {}, h("strong", {}, metric), " · ", h("span", { class: "k canary" }, "canary " + fmt(lastPt.canary)), " · ",
      h("span", { class: "k stable" }, "stable " + fmt(lastPt.stable)),
      threshold ? [" · ", h("span", { class: "k threshold" }, "threshold " + fmt(threshold.value))] : null));
}

// ---- the record ----
async function recordPage(id) {
  const enc = encodeURIComponent(id);
  show(h("h1", {}, "The record of ", h("code", {}, id)), h("p", {}, h("a", { href: "#/run/" + enc }, "Back to the run")));
  try {
    const text = await api("GET", "/api/runs/" + enc + "/report?format=markdown");
    $("#main").append(h("pre", { class: "record", id: "record", tabindex: "0" }, typeof text === "string" ? text : JSON.stringify(text, null, 2)));
  } catch (e) { toast(e.message, true); }
}

// ---- readiness: the run's checks, scored as `golive ready` scores them ----
async function readinessPage(id) {
  const enc = encodeURIComponent(id);
  show(h("h1", {}, "Readiness of ", h("code", {}, id)), h("p", {}, h("a", { href: "#/run/" + enc }, "Back to the run")));
  try {
    const [outline, status] = await Promise.all([api("GET", "/api/runs/" + enc + "/outline"), api("GET", "/api/runs/" + enc + "/status")]);
    const crit = {};
    for (const p of outline.phases) for (const i of p.items) crit[i.id] = i.critical;
    const checks = status.items.filter((i) => i.kind === "check");
    const rank = (i) => (i.status === "failed" ? 0 : i.status === "passed" ? 2 : 1);
    checks.sort((a, b) => rank(a) - rank(b) || (crit[b.id] ? 1 : 0) - (crit[a.id] ? 1 : 0));
    const weight = (i) => (crit[i.id] ? 3 : 1);
    const total = checks.reduce((n, i) => n + weight(i), 0);
    const passed = checks.filter((i) => i.status === "passed").reduce((n, i) => n + weight(i), 0);
    const score = total ? Math.floor((100 * passed) / total) : 0;
    const critFailed = checks.some((i) => crit[i.id] && i.status === "failed");
    const level = score === 100 ? "gold" : score >= 90 ? "silver" : score >= 75 ? "bronze" : "no level";
    $("#main").append(
      h("p", { class: "card", id: "readiness-score" }, h("strong", {}, "Score " + score + " / 100"), " · " + level,
        critFailed ? " · a critical check failed" : "", checks.length ? "" : " · this run has no checks"),
      h("table", { class: "list", id: "readiness" }, h("caption", {}, "Checks, failures first (critical ones weigh 3)"),
        h("thead", {}, h("tr", {}, ["Check", "State", "Critical", "Result"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, checks.map((i) => h("tr", {},
          h("td", {}, i.title, " ", h("code", {}, i.id)),
          h("td", {}, h("span", { class: "state s-" + i.status }, i.status)),
          h("td", {}, crit[i.id] ? "yes" : "no"),
          h("td", {}, i.result ? h("code", {}, JSON.stringify(i.result).slice(0, 300)) : ""))))));
  } catch (e) { toast(e.message, true); }
}

// ---- flags ----
async function flagsPage() {
  const body = h("tbody");
  const hist = h("tbody");
  show(h("h1", {}, "Feature flags"),
    h("table", { class: "list", id: "flags" }, h("caption", {}, "Flags"),
      h("thead", {}, h("tr", {}, ["Flag", "On", "Percentage", "Last change"].map((c) => h("th", { scope: "col" }, c)))), body),
    me.may.audit ? h("table", { class: "list", id: "flag-history" }, h("caption", {}, "History (audit log)"),
      h("thead", {}, h("tr", {}, ["When", "Who", "What", "Flag", "Reason"].map((c) => h("th", { scope: "col" }, c)))), hist) : null);
  const load = async () => {
    const flags = await api("GET", "/api/admin/feature-flags");
    body.replaceChildren(...flags.map((f) => {
      const d = f.definition, key = d.flag || d.key;
      const pct = h("input", { id: "pct-" + key, type: "number", min: 0, max: 100, step: "any", value: d.percentage === null || d.percentage === undefined ? "" : d.percentage, disabled: !me.may.flags });
      return h("tr", { "data-flag": key },
        h("th", { scope: "row" }, key),
        h("td", {}, me.may.flags
          ? h("button", { type: "button", class: "act", "aria-pressed": d.enabled ? "true" : "false", "aria-label": "Enable " + key,
            onclick: async () => { try { await api("PATCH", "/api/admin/feature-flags/" + encodeURIComponent(key), { enabled: !d.enabled }); await load(); } catch (e) { toast(e.message, true); } } }, d.enabled ? "on" : "off")
          : (d.enabled ? "on" : "off")),
        h("td", {}, h("label", { for: pct.id, class: "sr" }, "Percentage of " + key), pct,
          me.may.flags ? h("button", { type: "button", class: "act save", "aria-label": "Save the percentage of " + key, onclick: async () => {
            try { await api("PATCH", "/api/admin/feature-flags/" + encodeURIComponent(key), { enabled: d.enabled, percentage: pct.value === "" ? null : Number(pct.value) }); await load(); toast(key + " saved"); } catch (e) { toast(e.message, true); }
          } }, "Save") : null),
        h("td", {}, clock(f.updated_at) + " by " + f.updated_by));
    }));
    if (me.may.audit) {
      const entries = await api("GET", "/api/audit?action=flag.&limit=1000");
      hist.replaceChildren(...entries.reverse().slice(0, 100).map((e) => h("tr", {},
        h("td", {}, clock(e.at)), h("td", {}, e.actor), h("td", {}, e.action), h("td", {}, e.target), h("td", {}, e.reason || ""))));
    }
  };
  try { await load(); } catch (e) { toast(e.message, true); }
}

// ---- audit ----
async function auditPage() {
  if (!me.may.audit) return show(h("h1", {}, "Audit log"), h("p", {}, "The audit log needs an operator or admin token."));
  const PAGE = 200;
  const body = h("tbody");
  const more = h("button", { type: "button", id: "audit-older", hidden: true }, "Older entries");
  show(h("h1", {}, "Audit log"), h("table", { class: "list", id: "audit" }, h("caption", {}, "Every change, newest first"),
    h("thead", {}, h("tr", {}, ["When", "Who", "From", "Action", "Target", "Reason"].map((c) => h("th", { scope: "col" }, c)))), body), more);
  // Newest first, a page at a time, each page from where the last ended.
  let before = null;
  const load = async () => {
    more.disabled = true;
    try {
      const entries = await api("GET", "/api/audit?order=newest&limit=" + PAGE + (before === null ? "" : "&before=" + before));
      body.append(...entries.map((e) => h("tr", { "data-seq": e.seq },
        h("td", {}, clock(e.at)), h("td", {}, e.actor), h("td", {}, e.source || ""), h("td", {}, e.action), h("td", {}, e.target), h("td", {}, e.reason || ""))));
      if (entries.length) before = entries[entries.length - 1].seq;
      more.hidden = entries.length < PAGE;
    } catch (e) { toast(e.message, true); }
    more.disabled = false;
  };
  more.addEventListener("click", load);
  await load();
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  $("#signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    me = null;
    if (page) { page(); page = null; }
    $("#nav").hidden = true;
    $("#signout").hidden = true;
    $("#who").textContent = "";
    signIn();
  });
  start();
});
