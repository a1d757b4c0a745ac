// Two peers play tic-tac-toe through their own viewers' pages; the visitor's cheats through
// the SDK are refused by the host's Lua referee and the board stays as it was; the opponent's
// board follows a move by a push, without the page asking anything while it is connected.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withBrowser, folder, goop, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

const SLOW = { timeout: 20_000 }; // generous: a refused or reconnecting page polls every 2 s

/** Waits until the page's #status reads `text`. */
async function statusIs(page, text) {
  await page.waitForFunction((t) => document.getElementById("status")?.textContent === t, text, SLOW);
}

/** The nine cells as the page shows them, "-" for empty. */
function board(page) {
  return page.evaluate(() =>
    Array.from({ length: 9 }, (_, i) => document.getElementById("cell-" + i).textContent || "-").join(""));
}

/** The board the host has on record, read through the SDK. */
function recorded(page, gameId) {
  return page.evaluate((id) => Goop.data.call("ttt", { action: "state", game_id: id }).then((s) => s.board), gameId);
}

async function move(page, position) {
  await page.locator(`#cell-${position}:not([disabled])`).click(SLOW);
}

test("a visitor and the host play to a win; cheats are refused", async () => {
  const hostDir = folder("Host", "tictactoe");
  const host = await start(hostDir);
  const visitor = await start(folder("Ann"), [host.addr]);
  const hostSiteForVisitor = await siteOf(visitor, host);

  const ann = await open(browser(), hostSiteForVisitor);
  const me = await ann.evaluate(() => [Goop.self.id, Goop.peer.id]);
  assert.deepEqual(me, [visitor.id, host.id], "the page knows who is looking and whose site it is");
  await ann.locator("#new-game").click(SLOW);
  await statusIs(ann, "Waiting for the host to accept");
  const gameId = Number((await ann.locator("#game-id").textContent()).replace("#", ""));

  const hostPage = await open(browser(), host.ownSite);
  await hostPage.locator(`[data-game-id="${gameId}"] .accept`).click(SLOW);
  await statusIs(hostPage, "Your turn");
  await statusIs(ann, "Waiting for opponent");

  await move(hostPage, 0);
  await statusIs(ann, "Your turn");
  // Occupied cell, through the SDK rather than the (disabled) button.
  const occupied = await ann.evaluate((id) => Goop.data.call("move", { game_id: id, position: 0 }), gameId);
  assert.equal(occupied.error, "cell is already occupied");
  await move(ann, 3);
  await statusIs(ann, "Waiting for opponent");
  const early = await ann.evaluate((id) => Goop.data.call("move", { game_id: id, position: 5 }), gameId);
  assert.equal(early.error, "not your turn");
  assert.equal(await recorded(ann, gameId), "X--O-----");

  // Straight writes to the games table are refused by its access policy.
  const writes = await ann.evaluate(async (id) => {
    const outcomes = [];
    for (const attempt of [
      () => Goop.data.update("games", { board: "OOOOOOOOO" }, "_id = ?", [id]),
      () => Goop.data.insert("games", { board: "OOO------", status: "won_o" }),
      () => Goop.data.delete("games", "_id = ?", [id]),
    ]) {
      outcomes.push(await attempt().then((v) => "allowed: " + JSON.stringify(v), (e) => "refused: " + e.message));
    }
    return outcomes;
  }, gameId);
  for (const outcome of writes) assert.match(outcome, /^refused: .*(not allowed|policy|none)/i, outcome);

  // A move in somebody else's game: a third peer challenges the host, who accepts.
  const cy = folder("Cy");
  const other = JSON.parse(goop("call", "--peer", host.addr, "--dir", cy, "ttt", '{"action":"new"}')).result.game_id;
  goop("call", "--dir", hostDir, "ttt", JSON.stringify({ action: "accept", game_id: other }));
  const intruder = await ann.evaluate((id) => Goop.data.call("move", { game_id: id, position: 8 }), other);
  assert.equal(intruder.error, "you are not a player in this game");
  assert.equal(await recorded(ann, other), "---------");
  assert.equal(await recorded(ann, gameId), "X--O-----", "no cheat changed the board");

  await move(hostPage, 1);
  await statusIs(ann, "Your turn");
  await move(ann, 4);
  await statusIs(hostPage, "Your turn");
  await move(hostPage, 2);

  await statusIs(hostPage, "You won! (X wins)");
  await statusIs(ann, "X wins. You lost.");
  assert.equal(await board(hostPage), "XXXOO----");
  assert.equal(await board(ann), "XXXOO----");
  const after = await ann.evaluate((id) => Goop.data.call("move", { game_id: id, position: 8 }), gameId);
  assert.equal(after.error, "game is not in progress");
});

/** Counts the page's requests to the data protocol (`Goop.data.*`), from now on. */
function dataRequests(page) {
  const counter = { count: 0 };
  page.on("request", (r) => {
    if (new URL(r.url()).pathname.startsWith("/_goop/data")) counter.count++;
  });
  return counter;
}

const QUIET_MS = 6000;

test("the opponent's board follows a move through a push, with no polling while connected", async () => {
  const host = await start(folder("Host", "tictactoe"));
  const visitor = await start(folder("Ann"), [host.addr]);
  const spectator = await start(folder("Cy"), [host.addr]);
  const ann = await open(browser(), await siteOf(visitor, host));
  await ann.locator("#new-game").click(SLOW);
  await statusIs(ann, "Waiting for the host to accept");
  const gameId = Number((await ann.locator("#game-id").textContent()).replace("#", ""));

  // The challenge reaches the host's lobby by a push, as does the acceptance Ann's board.
  const hostPage = await open(browser(), host.ownSite);
  await hostPage.locator(`[data-game-id="${gameId}"] .accept`).click(SLOW);
  await statusIs(hostPage, "Your turn");
  await statusIs(ann, "Waiting for opponent");

  // Nothing happens: Ann's page asks nothing.
  await new Promise((r) => setTimeout(r, 1000));
  const asked = dataRequests(ann);
  await new Promise((r) => setTimeout(r, QUIET_MS));
  assert.equal(asked.count, 0, `requests to /_goop/data in ${QUIET_MS} ms of quiet`);

  // The host moves: Ann's board shows it within a few seconds, still without asking.
  const moved = Date.now();
  await move(hostPage, 4);
  await ann.waitForFunction(() => document.getElementById("cell-4").textContent === "X", null, { timeout: 5000 });
  const latency = Date.now() - moved;
  await statusIs(ann, "Your turn");
  assert.equal(asked.count, 0, "Ann's page re-rendered from the push");
  console.log(`# quiet ${QUIET_MS} ms: ${asked.count} data requests; host click to Ann's board: ${latency} ms`);

  // A spectator may not follow the game live (only its two players may): its page polls.
  const cy = await open(browser(), await siteOf(spectator, host));
  await cy.locator(`[data-game-id="${gameId}"] .open`).click(SLOW);
  await statusIs(cy, "O to move");
  const polled = dataRequests(cy);
  await new Promise((r) => setTimeout(r, QUIET_MS));
  assert.ok(polled.count >= 2, `the refused spectator polls: ${polled.count} requests in ${QUIET_MS} ms`);
  await move(ann, 0);
  await statusIs(cy, "X to move");
  assert.equal(await board(cy), "O---X----");
});
