// A plain HTML form (no JavaScript) on a peer's site calls its data function through
// /_goop/fn/NAME, and the function's HTML answer is the page the visitor sees.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { withBrowser, folder, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

test("a form without JavaScript calls the host's function as the visitor", async () => {
  const dir = folder("Host");
  writeFileSync(join(dir, "site/sign.html"), `<!doctype html><title>Sign</title>
    <form method="post" action="/_goop/fn/sign"><input name="name"><button>Sign</button></form>`);
  writeFileSync(join(dir, "site/lua/functions/sign.lua"), `
    function call(req)
      local name = (req.params.name or ""):gsub("[<>&\\"]", "")
      return { html = "<!doctype html><h1 id='thanks'>Thanks, " .. name .. "</h1><p>" .. goop.peer.label .. "</p>" }
    end`);
  const host = await start(dir);
  const visitor = await start(folder("Ann"), [host.addr]);
  const page = await open(browser(), (await siteOf(visitor, host)) + "sign.html");
  await page.locator("input[name=name]").fill("Ann <b>Lee</b>");
  await page.locator("button").click();
  await page.waitForSelector("#thanks", { timeout: 20_000 });
  assert.equal(await page.locator("#thanks").textContent(), "Thanks, Ann bLee/b");
  assert.equal(await page.locator("p").textContent(), "Ann");
});
