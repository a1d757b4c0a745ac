// The SDK's groups under a careless page: a message handler that throws loses nothing and does
// not make the page leave and join again.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { withBrowser, folder, goop, open, start } from "./harness.mjs";

const browser = withBrowser();

const ROOM = `
function on_group_join(name, peer) goop.kv.incr('joins') end
function handle(args)
  for i = 1, 3 do goop.group.send('lobby', { n = i }) end
  return tostring(goop.kv.get('joins') or 0)
end
`;

const PAGE = `<!doctype html><script src="/_goop/sdk.js"></script><script>
  window.got = [];
  window.group = Goop.group.join("lobby", function (m) {
    window.got.push(m.n);
    if (m.n === 1) throw new Error("a bug in the page's handler");
  });
</script>`;

test("a handler that throws keeps the page in its group and loses no message", async () => {
  const dir = folder("Host");
  writeFileSync(join(dir, "site/lua/room.lua"), ROOM);
  writeFileSync(join(dir, "site/careless.html"), PAGE);
  const host = await start(dir);
  const page = await open(browser(), host.ownSite + "careless.html");
  await page.evaluate(() => window.group.ready);

  assert.equal(goop("cmd", "--dir", dir, "!room").trim(), "1");
  await page.waitForFunction(() => window.got.length >= 1, null, { timeout: 20_000 });
  // Time for the rest of the stream, or for a reconnect (the SDK waits 1 s before it).
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual(await page.evaluate(() => window.got), [1, 2, 3]);
  assert.equal(goop("cmd", "--dir", dir, "!room").trim(), "1", "the page joined once");
});
