// The dashboard lives on its event stream (/api/events): a new message and a peer leaving show
// without a reload and with no periodic /api/ requests while the stream is up; while it is down
// the page polls, and it stops once the stream is back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withBrowser, folder, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

const SLOW = { timeout: 20_000 };
/** Three of the 2 s polls the dashboard made before it had a stream. */
const QUIET = 6_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Records the page's requests to the viewer's API (not the event stream) from now on. */
function apiRequests(page) {
  const seen = [];
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith("/api/") && path !== "/api/events") seen.push(path);
  });
  return seen;
}

test("the inbox and the peer list update on push, with no polling meanwhile", async () => {
  const host = await start(folder("Host"));
  const visitor = await start(folder("Ann"), [host.addr]);
  await siteOf(visitor, host);
  const page = await (await browser().newContext()).newPage();
  const requests = apiRequests(page);
  await page.goto(host.viewer + "/");
  const annRow = page.locator(`tr[data-peer-id="${visitor.id}"]`);
  await annRow.locator("text=connected").waitFor(SLOW);
  await page.evaluate(() => { window.notReloaded = true; });
  // The page's first fetches, once the stream is up, are done by now.
  await sleep(1_000);
  assert.ok(requests.includes("/api/status") && requests.includes("/api/inbox"), `${requests}`);
  requests.length = 0;

  await sleep(QUIET);
  console.log(`API requests in a quiet ${QUIET / 1000} s: ${requests.length}`);
  assert.deepEqual(requests, [], "no polling while the stream is up");

  const annPage = await open(browser(), visitor.viewer + "/");
  await annPage.locator(`#chat-peer option[value="${host.id}"]`).waitFor({ state: "attached", ...SLOW });
  await annPage.locator("#chat-peer").selectOption(host.id);
  await annPage.locator("#chat-content").fill("hello <b>Host</b>");
  const sent = Date.now();
  await annPage.locator("#chat-form button").click();
  const message = page.locator("#inbox li", { hasText: "hello <b>Host</b>" });
  await message.waitFor(SLOW);
  console.log(`the message showed on the host's dashboard ${Date.now() - sent} ms after Send`);
  assert.equal(await message.locator(".from").textContent(), "Ann");
  assert.equal(await page.locator("#inbox b").count(), 0, "text, not HTML");
  assert.deepEqual(requests, ["/api/inbox"], "one fetch of the inbox, on the push");

  visitor.child.kill("SIGTERM");
  await annRow.locator("text=discovered").waitFor(SLOW);
  assert.deepEqual(requests, ["/api/inbox"], "the peer list came with the push");
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was never reloaded");
});

test("while the stream is down the dashboard polls, and stops once the stream is back", async () => {
  const host = await start(folder("Host"));
  const page = await (await browser().newContext()).newPage();
  await page.route("**/api/events", (route) => route.abort());
  const requests = apiRequests(page);
  await page.goto(host.viewer + "/");
  await page.waitForFunction((id) => document.getElementById("self-id").textContent === id, host.id, SLOW);

  await sleep(QUIET);
  const polls = requests.filter((path) => path === "/api/status").length;
  console.log(`/api/status requests in ${QUIET / 1000} s with the stream down: ${polls}`);
  assert.ok(polls >= 3, `the page polls while the stream is down (${polls} polls)`);

  await page.unroute("**/api/events");
  // Retries back off: 1, 2, 4, 8 s … — the stream is back within the next one.
  const streamed = page.waitForResponse((r) => r.url().endsWith("/api/events") && r.status() === 200, { timeout: 30_000 });
  await streamed;
  await sleep(1_000);
  requests.length = 0;
  await sleep(QUIET);
  assert.deepEqual(requests, [], "no polling once the stream is back");
});
