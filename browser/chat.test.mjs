// The chat template with three members: the host's page and two visitors' pages. The host's
// Lua moderates: a refused message's reason is shown to its sender only, and the others never
// see it; a member that leaves disappears from the others' member lists.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withBrowser, folder, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

const WAIT = { timeout: 10_000 };

/** The texts of the messages a page shows. */
function texts(page) {
  return page.locator("#messages li.message .text").allTextContents();
}

/** Waits until `page` shows a message with exactly `text`. */
function sees(page, text) {
  return page.waitForFunction(
    (t) => Array.from(document.querySelectorAll("#messages .text")).some((e) => e.textContent === t), text, WAIT);
}

/** Waits until the page's member list has exactly these peer IDs. */
function membersAre(page, ids) {
  return page.waitForFunction((want) => {
    const have = Array.from(document.querySelectorAll("#members li")).map((li) => li.dataset.id).sort();
    return JSON.stringify(have) === JSON.stringify([...want].sort());
  }, ids, WAIT);
}

/** With SCREENSHOTS=DIR, a picture of the page to look at (not part of the test). */
async function shot(page, name) {
  if (process.env.SCREENSHOTS) await page.screenshot({ path: `${process.env.SCREENSHOTS}/${name}.png` });
}

async function say(page, text) {
  await page.locator("#text:not([disabled])").fill(text, WAIT);
  await page.locator("#text").press("Enter");
}

test("three members chat; a refused message reaches nobody; a member leaves", async () => {
  const host = await start(folder("Host", "chat"));
  const annPeer = await start(folder("Ann"), [host.addr]);
  const boPeer = await start(folder("Bo"), [host.addr]);
  const hostPage = await open(browser(), host.ownSite);
  const ann = await open(browser(), await siteOf(annPeer, host));
  const bo = await open(browser(), await siteOf(boPeer, host));
  const everyone = [host.id, annPeer.id, boPeer.id];
  for (const page of [hostPage, ann, bo]) await membersAre(page, everyone);

  await say(ann, "hello everyone");
  for (const page of [hostPage, ann, bo]) await sees(page, "hello everyone");

  // The word filter: Bo is told why; the text stays in Bo's input to fix.
  await say(bo, "this is a scam, honestly");
  await bo.waitForFunction(() => document.getElementById("error").textContent !== "", null, WAIT);
  assert.equal(await bo.locator("#error").textContent(), '"scam" is not allowed here');
  assert.equal(await bo.locator("#text").inputValue(), "this is a scam, honestly");
  for (const page of [hostPage, ann]) assert.equal(await page.locator("#error").textContent(), "");
  await shot(bo, "chat-refused");

  // Too long: refused by the host, whatever the page's own input allows.
  const tooLong = await bo.evaluate(() => room.send({ text: "a".repeat(501) }).then(() => "sent", (e) => e.message));
  assert.equal(tooLong, "a message is at most 500 characters");

  await say(bo, "ok, fine");
  for (const page of [hostPage, ann, bo]) await sees(page, "ok, fine");
  // Messages arrive in order, so by now a refused one would have arrived too.
  for (const page of [hostPage, ann, bo]) {
    assert.deepEqual(await texts(page), ["hello everyone", "ok, fine"]);
  }

  // Bo closes the page: the others see Bo leave.
  await bo.close();
  for (const page of [hostPage, ann]) {
    await membersAre(page, [host.id, annPeer.id]);
    await page.waitForFunction(() => /left$/.test(document.querySelector("#messages li.notice:last-child")?.textContent ?? ""), null, WAIT);
  }
  await shot(hostPage, "chat-host");
});
