// A peer's page is confined to its own origin: it cannot read the viewer's API, cannot talk to
// another peer's origin, and its SDK speaks for the visitor to that one peer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withBrowser, folder, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

test("a peer's page reaches that peer only", async () => {
  const host = await start(folder("Host"));
  const visitor = await start(folder("Ann"), [host.addr]);
  const page = await open(browser(), await siteOf(visitor, host));

  // The starter page greets through the SDK: hello ran on the host, as the visitor's peer ID.
  await page.waitForFunction(() => document.getElementById("greeting").textContent === "Hello, Ann!", null, {
    timeout: 20_000,
  });
  const hello = await page.evaluate(() => goopData.call("hello", {}));
  assert.equal(hello.caller, visitor.id);

  const attempts = await page.evaluate(
    async ([viewer, otherSite]) => {
      const tryIt = (f) => f().then((r) => "reached: " + r.status, (e) => "blocked: " + e.message);
      return {
        api: await tryIt(() => fetch(viewer + "/api/status")),
        chat: await tryIt(() =>
          fetch(viewer + "/api/chat", { method: "POST", mode: "no-cors", body: '{"peer":"x","content":"hi"}' })),
        otherPeer: await tryIt(() =>
          fetch(otherSite + "_goop/data", { method: "POST", mode: "no-cors", body: '{"op":"lua-list"}' })),
      };
    },
    [visitor.viewer, visitor.ownSite],
  );
  for (const [what, outcome] of Object.entries(attempts)) assert.match(outcome, /^blocked: /, `${what}: ${outcome}`);
});
