// Tic-tac-toe page: the lobby and one open game, kept up to date by the host's pushes (groups
// "ttt-lobby" and "ttt-<id>"); it asks again every 2 s only while a group is not connected.
// Every rule is enforced by the host's Lua functions (ttt.lua, move.lua); this page only shows
// what they answer.
"use strict";

const isHost = Goop.self.id === Goop.peer.id;
const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
let openGame = null; // game id shown on the board
let shown = null; // the state on the board, as the host last said it
let gameFeed = null; // the open game's group

/**
 * Follows group `name`: `onMessage` for each push; `refresh()` once connected (to catch up on
 * what happened before) and whenever pushes were missed. `feed.live` is false while the page
 * must poll instead: before it connects, while it is disconnected, or when the host refuses it.
 */
function follow(name, onMessage, refresh) {
  const feed = { live: false };
  feed.group = Goop.group.join(name, onMessage, {
    status(state) {
      const was = feed.live;
      feed.live = state === "connected";
      if (feed.live && !was) refresh();
    },
    missed: refresh,
  });
  feed.group.ready.catch(() => {}); // refused: this page polls it instead
  return feed;
}

function short(id) {
  return id ? id.slice(0, 6) + "…" + id.slice(-4) : "";
}

function list(value) {
  return Array.isArray(value) ? value : [];
}

function showError(text) {
  $("message").textContent = text || "";
}

// What a player sees for a game's state.
function statusText(g) {
  const me = g.your_symbol;
  switch (g.status) {
    case "waiting":
      return isHost ? "Challenge waiting: accept it to start (you are X)" : "Waiting for the host to accept";
    case "playing":
      if (!me) return g.turn + " to move";
      return g.turn === me ? "Your turn" : "Waiting for opponent";
    case "won_x":
    case "won_o": {
      const winner = g.status === "won_x" ? "X" : "O";
      if (!me) return winner + " wins";
      return winner === me ? "You won! (" + winner + " wins)" : winner + " wins. You lost.";
    }
    case "draw":
      return "Draw";
    case "cancelled":
      return "Cancelled";
    default:
      return g.status;
  }
}

function render(g) {
  if (g.game_id !== openGame) return; // an answer about a game no longer open
  shown = g;
  $("game").hidden = false;
  $("game-id").textContent = "#" + g.game_id;
  $("opponent").textContent = g.challenger_label ? "vs " + g.challenger_label : "";
  const myTurn = g.status === "playing" && g.your_symbol !== "" && g.turn === g.your_symbol;
  for (let i = 0; i < 9; i++) {
    const cell = $("cell-" + i);
    const mark = g.board.charAt(i);
    cell.textContent = mark === "-" ? "" : mark;
    cell.disabled = !(myTurn && mark === "-");
  }
  $("status").textContent = statusText(g);
}

async function refreshGame() {
  if (openGame === null) return;
  try {
    render(await Goop.data.call("ttt", { action: "state", game_id: openGame }));
  } catch (e) {
    showError(e.message);
  }
}

// A pushed state has no `your_symbol` (each page knows its own) and may leave fields out.
function pushed(message) {
  const g = message && message.game;
  if (message.type !== "game" || !g || g.game_id !== openGame) return;
  render(Object.assign({}, shown, g, { your_symbol: shown ? shown.your_symbol : "" }));
}

function open(id) {
  if (openGame === id) return refreshGame();
  openGame = id;
  shown = null;
  showError("");
  if (gameFeed) gameFeed.group.leave();
  gameFeed = follow("ttt-" + id, pushed, refreshGame);
  refreshGame();
}

async function act(params) {
  showError("");
  try {
    const answer = await Goop.data.call("ttt", params);
    if (answer.error) showError(answer.error);
    return answer;
  } catch (e) {
    showError(e.message);
    return {};
  } finally {
    refreshLobby();
  }
}

function button(text, cls, onClick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

async function refreshLobby() {
  let games;
  try {
    games = list((await Goop.data.call("ttt", { action: "lobby" })).games);
  } catch (e) {
    showError(e.message);
    return;
  }
  const mine = games.find((g) => g.challenger === Goop.self.id && (g.status === "waiting" || g.status === "playing"));
  $("new-game").hidden = isHost || Boolean(mine);
  if (openGame === null && mine) open(mine._id);
  $("lobby").replaceChildren(...games.map((g) => {
    const row = document.createElement("tr");
    row.dataset.gameId = g._id;
    for (const text of ["#" + g._id, g.challenger_label || short(g.challenger), g.status]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    const actions = row.appendChild(document.createElement("td"));
    actions.appendChild(button("Open", "open", () => open(g._id)));
    const player = isHost || g.challenger === Goop.self.id;
    if (isHost && g.status === "waiting") {
      actions.appendChild(button("Accept", "accept", async () => {
        await act({ action: "accept", game_id: g._id });
        open(g._id);
      }));
    }
    if (player && g.status === "waiting") {
      actions.appendChild(button("Cancel", "cancel", () => act({ action: "cancel", game_id: g._id })));
    }
    return row;
  }));
}

document.querySelectorAll("#board button").forEach((cell) => {
  cell.addEventListener("click", async () => {
    if (openGame === null) return;
    showError("");
    try {
      const answer = await Goop.data.call("move", { game_id: openGame, position: Number(cell.dataset.cell) });
      if (answer.error) showError(answer.error);
    } catch (e) {
      showError(e.message);
    }
    refreshGame();
  });
});

$("new-game").addEventListener("click", async () => {
  const answer = await act({ action: "new" });
  if (answer.game_id) open(answer.game_id);
});

$("host-label").textContent = Goop.peer.label ? "at " + Goop.peer.label : "";
$("who").textContent = isHost
  ? "You host this game: visitors challenge you, you play X."
  : "You play O against the host" + (Goop.peer.label ? " (" + Goop.peer.label + ")" : "") + ".";
const lobbyFeed = follow("ttt-lobby", refreshLobby, refreshLobby);
refreshLobby();
setInterval(() => {
  if (!lobbyFeed.live) refreshLobby();
  if (openGame !== null && !(gameFeed && gameFeed.live)) refreshGame();
}, POLL_MS);
