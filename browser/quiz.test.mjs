// A visitor takes the host's quiz through its own viewer: the score comes from the host's Lua,
// the leaderboard shows it, and the answer key cannot be read from the page.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withBrowser, folder, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

test("the quiz is scored on the host and its answers stay there", async () => {
  const host = await start(folder("Host", "quiz"));
  const visitor = await start(folder("Ann"), [host.addr]);
  const page = await open(browser(), await siteOf(visitor, host));

  await page.waitForFunction(() => document.querySelectorAll(".question").length === 3, null, { timeout: 20_000 });
  // Right, wrong, right (the sample questions' key is 1, 0, 2).
  for (const [question, choice] of [[1, 1], [2, 2], [3, 2]]) {
    await page.locator(`.question[data-question-id="${question}"] input[value="${choice}"]`).check();
  }
  await page.locator("#submit").click();
  await page.waitForFunction(() => document.getElementById("score").textContent === "2 / 3", null, { timeout: 20_000 });
  await page.waitForFunction(() => document.getElementById("leaderboard").textContent.includes("Ann: 2 / 3"), null, {
    timeout: 20_000,
  });

  const peeks = await page.evaluate(async () => {
    const tries = [
      () => Goop.data.query("answer_key"),
      () => Goop.data.query("questions", { where: "_id IN (SELECT question_id FROM answer_key)" }),
      () => Goop.data.insert("scores", { score: 3, total: 3 }),
      () => fetch("/schema.sql").then((r) => (r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)))),
    ];
    const out = [];
    for (const attempt of tries) out.push(await attempt().then((v) => "allowed: " + JSON.stringify(v), (e) => "refused: " + e.message));
    return out;
  });
  for (const outcome of peeks) assert.match(outcome, /^refused: /, outcome);
  assert.match(peeks[3], /HTTP 404/);
});
