// The viewer's dashboard: shows /api/status and /api/inbox, re-renders what /api/events says
// changed (polling every 2 s only while that stream is down), sends messages, connects to peers.
// Everything shown comes from other peers in part (labels, messages): text only, never HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function short(id) {
  return id.length > 16 ? id.slice(0, 8) + "…" + id.slice(-6) : id;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({ ok: false, error: "HTTP " + response.status }));
  if (answer.ok === false) throw new Error(answer.error);
  return answer;
}

function renderSelf(self) {
  $("self-label").textContent = self.label ? "· " + self.label : "";
  $("self-id").textContent = self.id;
  $("self-site").href = self.site;
  const list = $("self-addrs");
  const relayed = (self.relayed || []).map((a) => el("li", a + "  (through a helper)"));
  list.replaceChildren(...self.addrs.map((a) => el("li", a)), ...relayed);
  const reach = { public: "reachable directly", private: "behind a NAT: reached through helpers", unknown: "reachability unknown" };
  $("self-reach").textContent = reach[self.reachability] || "";
}

function renderPeers(peers) {
  const body = $("peers");
  if (peers.length === 0) {
    body.replaceChildren(el("tr"));
    body.firstChild.appendChild(el("td", "No peers yet.", "note")).colSpan = 4;
  } else {
    body.replaceChildren(...peers.map((p) => {
      const row = el("tr");
      row.dataset.peerId = p.id;
      const id = row.appendChild(el("td"));
      id.appendChild(el("code", short(p.id))).title = p.id;
      row.appendChild(el("td", p.label));
      const state = p.connected ? (p.connection === "relayed" ? "connected (relayed)" : "connected") : "discovered";
      row.appendChild(el("td", state, p.connected ? "on" : "off"));
      const link = row.appendChild(el("td")).appendChild(el("a", "open site"));
      link.href = p.site;
      link.className = "site-link";
      return row;
    }));
  }
  const select = $("chat-peer");
  const chosen = select.value;
  select.replaceChildren(...peers.map((p) => {
    const o = el("option", (p.label || short(p.id)) + (p.connected ? "" : " (offline?)"));
    o.value = p.id;
    return o;
  }));
  if (chosen) select.value = chosen;
}

function renderSchema(error) {
  $("schema").hidden = !error;
  $("schema-error").textContent = error || "";
}

function renderScripts(scripting, scripts) {
  $("scripting-off").hidden = scripting;
  $("scripts").replaceChildren(...scripts.map((s) => {
    const row = el("tr");
    row.dataset.script = s.name;
    row.appendChild(el("td", s.name));
    row.appendChild(el("td", s.loaded ? s.kind : "not loaded"));
    row.appendChild(el("td", s.description));
    row.appendChild(el("td", s.rate_limit === null ? "default" : s.rate_limit + "/min"));
    row.appendChild(el("td", s.invocations, "runs"));
    row.appendChild(el("td", s.errors, "errors"));
    row.appendChild(el("td", s.load_error || s.last_error || "", "error"));
    return row;
  }));
}

function renderInbox(messages) {
  // The API lists oldest first; newest on top reads better.
  $("inbox").replaceChildren(...messages.slice().reverse().map((m) => {
    const li = el("li");
    li.appendChild(el("span", m.label || short(m.from), "from")).title = m.from;
    li.appendChild(el("span", m.content, "content"));
    li.appendChild(el("span", m.at + " UTC", "at"));
    return li;
  }));
}

async function refreshStatus() {
  const status = await api("/api/status");
  renderSelf(status.self);
  renderSchema(status.schema_error);
  renderPeers(status.peers);
  renderScripts(status.scripting, status.scripts);
}

async function refreshInbox() {
  renderInbox((await api("/api/inbox")).messages);
}

async function refresh() {
  try {
    await refreshStatus();
    await refreshInbox();
  } catch (e) {
    console.warn("viewer refresh failed", e);
  }
}

// A burst of messages makes one fetch in flight and at most one more after it.
let inboxFetching = false;
let inboxAgain = false;

async function inboxChanged() {
  if (inboxFetching) {
    inboxAgain = true;
    return;
  }
  inboxFetching = true;
  do {
    inboxAgain = false;
    await refreshInbox().catch((e) => console.warn("viewer inbox failed", e));
  } while (inboxAgain);
  inboxFetching = false;
}

// Polling, only while the live stream is down.
const POLL_EVERY = 2000;
let poller = null;

function startPolling() {
  if (poller !== null) return;
  refresh();
  poller = setInterval(refresh, POLL_EVERY);
}

function stopPolling() {
  clearInterval(poller);
  poller = null;
}

// The live stream; after it fails, tried again in 1 s, 2 s, 4 s … up to 30 s.
const RETRY_FIRST = 1000;
const RETRY_MOST = 30000;
let retryIn = RETRY_FIRST;

function listen() {
  const events = new EventSource("/api/events");
  const on = (name, render) => events.addEventListener(name, (event) => {
    try {
      render(JSON.parse(event.data));
    } catch (e) {
      console.warn("viewer event " + name + " failed", e);
    }
  });
  on("ready", () => {
    retryIn = RETRY_FIRST;
    stopPolling();
    refresh();
  });
  on("inbox", inboxChanged);
  on("missed", () => refresh());
  on("peers", (data) => renderPeers(data.peers));
  on("status", (data) => {
    renderSelf(data.self);
    renderSchema(data.schema_error);
    renderScripts(data.scripting, data.scripts);
  });
  events.addEventListener("error", () => {
    // The browser would retry at its own pace; this page retries with backoff and polls meanwhile.
    events.close();
    startPolling();
    setTimeout(listen, retryIn);
    retryIn = Math.min(retryIn * 2, RETRY_MOST);
  });
}

$("connect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("connect-result");
  out.textContent = "connecting…";
  try {
    const answer = await api("/api/connect", { addr: $("connect-addr").value });
    out.textContent = "connected to " + short(answer.peer);
  } catch (e) {
    out.textContent = e.message;
  }
});

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = $("chat-result");
  const peer = $("chat-peer").value;
  const content = $("chat-content").value;
  try {
    await api("/api/chat", { peer, content });
    out.textContent = "sent";
    const li = el("li");
    li.appendChild(el("span", "to " + short(peer), "from"));
    li.appendChild(el("span", content, "content"));
    $("sent").prepend(li);
    $("chat-content").value = "";
  } catch (e) {
    out.textContent = e.message;
  }
});

// The stream's `ready` fetches everything; if it cannot open, polling does.
listen();
