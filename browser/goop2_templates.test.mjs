// The templates written in goop2's style (schemas/*.json, goop.orm, goop.route, goop.owner):
// a visitor and the owner use each through its page, and a visitor's shortcuts are refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { withBrowser, folder, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();
const WAIT = { timeout: 20_000 };

/** Runs each attempt in the page; "allowed: …" or "refused: …" for each. */
function attempts(page, tries) {
  return page.evaluate(async (sources) => {
    const out = [];
    for (const source of sources) {
      out.push(await (0, eval)(source)().then((v) => "allowed: " + JSON.stringify(v), (e) => "refused: " + e.message));
    }
    return out;
  }, tries);
}

async function peers(template) {
  const host = await start(folder("Host", template));
  const visitor = await start(folder("Ann"), [host.addr]);
  return { host, visitor, url: await siteOf(visitor, host) };
}

test("todo: visitors add and tick off their own items; only the owner deletes and reorders", async () => {
  const { host, visitor, url } = await peers("todo");
  const page = await open(browser(), url);
  await page.locator("#title").fill("Buy milk");
  await page.locator("#add button").click();
  await page.waitForFunction(() => document.querySelectorAll("#items li").length === 1, null, WAIT);
  await page.locator("#items li input[type=checkbox]").check();
  await page.waitForFunction(() => document.querySelector("#items li.done"), null, WAIT);
  assert.equal(await page.locator("#items li button").count(), 0, "a visitor gets no delete or move buttons");

  const owner = await open(browser(), host.ownSite);
  await owner.locator("#title").fill("Water plants");
  await owner.locator("#add button").click();
  await owner.waitForFunction(() => document.querySelectorAll("#items li").length === 2, null, WAIT);
  await owner.locator("#items li").nth(1).getByText("↑").click();
  await owner.waitForFunction(() => document.querySelector("#items li .title").textContent === "Water plants", null, WAIT);
  await owner.locator("#items li").nth(1).getByText("Delete").click();
  await owner.waitForFunction(() => document.querySelectorAll("#items li").length === 1, null, WAIT);

  const outcomes = await attempts(page, [
    `() => Goop.data.call("todo", { action: "delete", id: 1 })`,
    `() => Goop.data.call("todo", { action: "reorder", ids: [] })`,
    `() => Goop.data.call("todo", { action: "toggle", id: 2 })`,
    `() => Goop.data.insert("todos", { title: "sneaked in" })`,
    `() => Goop.data.delete("todos", "1 = 1")`,
  ]);
  assert.match(outcomes[0], /^refused: .*only the site owner can do this/);
  assert.match(outcomes[1], /^refused: .*only the site owner can do this/);
  assert.match(outcomes[2], /^refused: .*only whoever added an item/);
  assert.match(outcomes[3], /^refused: /, outcomes[3]);
  assert.match(outcomes[4], /^refused: /, outcomes[4]);
  const titles = await page.evaluate(() => Goop.data.call("todo", { action: "list" }).then((a) => a.items.map((i) => i.title)));
  assert.deepEqual(titles, ["Water plants"]);
  void visitor;
});

test("blog: the owner writes and keeps drafts; visitors read what is published", async () => {
  const { host, url } = await peers("blog");
  const owner = await open(browser(), host.ownSite);
  for (const [title, published] of [["Hello, World!", true], ["Secret plans", false]]) {
    await owner.goto(host.ownSite);
    await owner.waitForFunction(() => !document.getElementById("editor").hidden, null, WAIT);
    await owner.locator("#title").fill(title);
    await owner.locator("#body").fill(`The body of ${title}`);
    await owner.locator("#published").setChecked(published);
    await owner.locator("#write button").click();
    await owner.waitForFunction((t) => document.getElementById("post-title").textContent === t, title, WAIT);
  }
  await owner.goto(host.ownSite);
  await owner.waitForFunction(() => document.querySelectorAll(".card").length === 2, null, WAIT);
  assert.equal(await owner.locator(".draft").count(), 1);

  const page = await open(browser(), url);
  await page.waitForFunction(() => document.querySelectorAll(".card").length === 1, null, WAIT);
  assert.equal(await page.locator(".card h2 a").textContent(), "Hello, World!");
  await page.locator(".card h2 a").click();
  await page.waitForFunction(() => document.getElementById("post-body").textContent === "The body of Hello, World!", null, WAIT);
  assert.ok(await page.locator("#edit").isHidden());

  const outcomes = await attempts(page, [
    `() => Goop.data.call("blog", { action: "read", slug: "secret-plans" })`,
    `() => Goop.data.call("blog", { action: "save", title: "Defaced", body: "x" })`,
    `() => Goop.data.call("blog", { action: "delete", slug: "hello-world" })`,
    `() => Goop.data.query("posts")`,
    `() => Goop.data.update("posts", { title: "Defaced" }, "1 = 1")`,
  ]);
  assert.match(outcomes[0], /^refused: .*no such post/);
  assert.match(outcomes[1], /^refused: .*only the site owner can do this/);
  assert.match(outcomes[2], /^refused: .*only the site owner can do this/);
  // goop2's "owner" read: a visitor reads only rows of their own, and has none; drafts stay hidden.
  assert.equal(outcomes[3], "allowed: []");
  assert.match(outcomes[4], /^refused: /, outcomes[4]);
});

test("survey: each visitor answers once and only the owner sees the results", async () => {
  const { host, url } = await peers("survey");
  const page = await open(browser(), url);
  await page.waitForFunction(() => document.querySelectorAll("#questions fieldset").length === 2, null, WAIT);
  await page.locator("#submit").click();
  await page.waitForFunction(() => document.getElementById("message").textContent.includes("please answer every question"), null, WAIT);
  await page.locator("#questions fieldset").nth(0).locator("input[value='2']").check();
  await page.locator("#questions fieldset").nth(1).locator("input[value='1']").check();
  await page.locator("#submit").click();
  await page.waitForFunction(() => !document.getElementById("thanks").hidden, null, WAIT);
  assert.ok(await page.locator("#owner").isHidden());

  const outcomes = await attempts(page, [
    `() => Goop.data.call("survey", { action: "answer", answers: { "1": 1, "2": 1 } })`,
    `() => Goop.data.call("survey", { action: "results" })`,
    `() => Goop.data.call("survey", { action: "add_question", text: "Mine?", choices: ["a", "b"] })`,
    `() => Goop.data.query("responses").then((rows) => rows.every((r) => r._owner === Goop.self.id) ? Promise.reject(new Error("only " + rows.length + " own")) : rows)`,
    `() => Goop.data.insert("responses", { answers: "{}" })`,
  ]);
  assert.match(outcomes[0], /^refused: .*you have already answered/);
  assert.match(outcomes[1], /^refused: .*only the site owner can do this/);
  assert.match(outcomes[2], /^refused: .*only the site owner can do this/);
  // goop2's "owner" read: a visitor sees their own answer and no one else's.
  assert.equal(outcomes[3], "refused: only 1 own");
  assert.match(outcomes[4], /^refused: /, outcomes[4]);

  const owner = await open(browser(), host.ownSite);
  await owner.waitForFunction(() => document.getElementById("total").textContent === "(1 answer)", null, WAIT);
  const results = await owner.locator("#results").textContent();
  assert.match(results, /A link elsewhere: 1/);
  assert.match(results, /Yes: 1/);
  await owner.locator("#new-text").fill("Favourite colour?");
  await owner.locator("#new-choices").fill("Red|Green|Blue");
  await owner.locator("#add button").click();
  await owner.waitForFunction(() => document.querySelectorAll("#questions fieldset").length === 3, null, WAIT);
});
