// Chat page: joins the host's group "chat", shows what the host pushes (messages, members
// joining and leaving) and sends what you type. The host's Lua (functions/chat.lua) decides:
// a refused message never reaches the others, and its reason is shown here, to you only.
"use strict";

const $ = (id) => document.getElementById(id);
const ROOM = "chat";
const isHost = Goop.self.id === Goop.peer.id;
const members = new Map(); // id → {id, label}
const shown = new Set(); // ids of the messages on the page

function short(id) {
  return id ? id.slice(0, 6) + "…" + id.slice(-4) : "";
}

function nameOf(person) {
  return person.label || short(person.id);
}

function element(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Keeps the newest line in view unless the reader scrolled up. */
function append(li, before) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.insertBefore(li, before || null);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function showMessage(m) {
  if (shown.has(m.id)) return;
  shown.add(m.id);
  const li = element("li", m.from === Goop.self.id ? "message mine" : "message");
  li.dataset.id = m.id;
  li.append(element("span", "who", nameOf({ id: m.from, label: m.label })), element("span", "text", m.text));
  if (m.at) {
    const at = new Date(m.at * 1000);
    li.append(element("time", "", at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  }
  // History fetched after a reconnect may be older than what is shown: keep id order.
  const later = Array.from($("messages").querySelectorAll("li.message")).find((e) => Number(e.dataset.id) > m.id);
  append(li, later);
}

function notice(text) {
  append(element("li", "notice", text));
}

function renderMembers() {
  const list = Array.from(members.values()).sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  $("count").textContent = "(" + list.length + ")";
  $("members").replaceChildren(...list.map((m) => {
    const li = element("li", "member");
    li.dataset.id = m.id;
    const roles = [m.id === Goop.self.id && "you", m.id === Goop.peer.id && "host"].filter(Boolean);
    li.append(element("span", "", nameOf(m) + (roles.length ? " (" + roles.join(", ") + ")" : "")));
    if (isHost && m.id !== Goop.self.id) li.append(banButton(m, true));
    return li;
  }));
}

function banButton(person, ban) {
  const b = element("button", ban ? "ban" : "unban", ban ? "ban" : "let back");
  b.addEventListener("click", async () => {
    try {
      renderBans(await Goop.data.call("chat", { action: ban ? "ban" : "unban", peer: person.id, label: person.label }));
    } catch (e) {
      $("error").textContent = e.message;
    }
  });
  return b;
}

function renderBans(state) {
  if (!state.banned) return;
  $("bans").hidden = state.banned.length === 0;
  $("banned").replaceChildren(...state.banned.map((p) => {
    const li = element("li");
    li.append(element("span", "", nameOf(p)), banButton(p, false));
    return li;
  }));
}

/** Fetches members and recent messages: on (re)connecting, or after the page missed pushes. */
async function refresh() {
  try {
    const state = await Goop.data.call("chat", { action: "state" });
    members.clear();
    for (const m of state.members || []) members.set(m.id, m);
    renderMembers();
    for (const m of state.messages || []) showMessage(m);
    renderBans(state);
  } catch (e) {
    $("error").textContent = e.message;
  }
}

function pushed(m) {
  switch (m.type) {
    case "message":
      return showMessage(m);
    case "join":
      members.set(m.member.id, m.member);
      renderMembers();
      return notice(nameOf(m.member) + " joined");
    case "leave":
      members.delete(m.member.id);
      renderMembers();
      return notice(nameOf(m.member) + " left");
    case "banned":
    case "unbanned":
      if (m.member.id === Goop.self.id) setOpen(m.type === "unbanned", m.type === "banned" ? "you are banned" : "");
      return notice(nameOf(m.member) + (m.type === "banned" ? " was banned" : " may come back"));
  }
}

function setOpen(open, why) {
  $("text").disabled = !open;
  $("send").disabled = !open;
  $("connection").textContent = open ? "live" : why;
  $("connection").classList.toggle("live", open);
}

const room = Goop.group.join(ROOM, pushed, {
  status(state) {
    if (state === "connected") {
      setOpen(true);
      refresh();
    } else if (state === "disconnected") {
      setOpen(false, "reconnecting…");
    }
  },
  missed: refresh,
});
room.ready.catch((e) => {
  setOpen(false, "not admitted");
  $("error").textContent = e.message;
});

$("say").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  $("error").textContent = "";
  $("send").disabled = true;
  try {
    await room.send({ text });
    $("text").value = "";
  } catch (e) {
    $("error").textContent = e.message; // the host's reason, for the sender only
  } finally {
    $("send").disabled = !room.connected;
    $("text").focus();
  }
});

$("host-label").textContent = Goop.peer.label ? "at " + Goop.peer.label : "";
