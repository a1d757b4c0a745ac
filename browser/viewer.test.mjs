// The dashboard in a browser: this peer, the peers it knows with links to their sites, the
// scripts with their runs, a direct message whose command reply lands in the inbox, and a
// broken schema.sql.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { withBrowser, folder, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

const SLOW = { timeout: 20_000 };

test("the dashboard shows peers and scripts, and sends messages", async () => {
  const host = await start(folder("Host"));
  const visitor = await start(folder("Ann"), [host.addr]);
  const hostSite = await siteOf(visitor, host);
  const page = await open(browser(), visitor.viewer + "/");

  await page.waitForFunction((id) => document.getElementById("self-id").textContent === id, visitor.id, SLOW);
  const row = page.locator(`tr[data-peer-id="${host.id}"]`);
  await row.locator("text=connected").waitFor(SLOW);
  assert.equal(await row.locator("td").nth(1).textContent(), "Host");
  assert.equal(await row.locator("a.site-link").getAttribute("href"), hostSite);

  await page.locator("#chat-peer").selectOption(host.id);
  await page.locator("#chat-content").fill("!echo from the dashboard");
  await page.locator("#chat-form button").click();
  await page.locator("#inbox", { hasText: "You said: from the dashboard" }).waitFor(SLOW);

  const hostPage = await open(browser(), host.viewer + "/");
  const echo = hostPage.locator('tr[data-script="echo"]');
  await echo.locator("td.runs", { hasText: "1" }).waitFor(SLOW);
  assert.equal(await echo.locator("td").nth(1).textContent(), "command");
});

test("a broken schema.sql shows on the dashboard, as text, until it is fixed", async () => {
  const dir = folder("Host");
  const schema = join(dir, "site/schema.sql");
  writeFileSync(schema, "CREATE TABLE notes (body TEXT);\n\nCREATE TABLE <b>oops</b> (a);\n");
  const host = await start(dir);
  const page = await open(browser(), host.viewer + "/");
  const error = page.locator("#schema-error");
  await error.waitFor(SLOW);
  assert.equal(await error.textContent(), 'site/schema.sql:3: near "<": syntax error');
  assert.equal(await page.locator("#schema b").count(), 0, "shown as text, not HTML");

  writeFileSync(schema, "CREATE TABLE notes (body TEXT);\n");
  await page.locator("#schema").waitFor({ state: "hidden", ...SLOW });
});
