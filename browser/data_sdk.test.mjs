// Goop.data with goop2's methods, as a visitor's page uses them: every method against a real
// host, its answers, what the table's access refuses, and a namespace pages can extend but not
// tamper with.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { withBrowser, folder, goop, open, siteOf, start } from "./harness.mjs";

const browser = withBrowser();

test("Goop.data: goop2's methods, under the table's access", async () => {
  const dir = folder("Host");
  writeFileSync(join(dir, "site/schema.sql"), `
    CREATE TABLE IF NOT EXISTS notes (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT,
      _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
      title TEXT NOT NULL, tag TEXT, n INTEGER);
    CREATE TABLE IF NOT EXISTS settings (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT,
      _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
      key TEXT UNIQUE, value TEXT);`);
  writeFileSync(join(dir, "site/schema.json"), JSON.stringify({ tables: { settings: { insert: "open", update: "open" } } }));
  const host = await start(dir);
  goop("data", "--dir", dir, JSON.stringify({ op: "insert", table: "notes", data: { title: "host's", tag: "h", n: 100 } }));
  const visitor = await start(folder("Ann"), [host.addr]);
  const page = await open(browser(), await siteOf(visitor, host));

  const got = await page.evaluate(async () => {
    const d = Goop.data;
    const out = {};
    const ids = [];
    for (const [title, tag, n] of [["a", "x", 1], ["b", "x", 2], ["c", "y", 3]]) ids.push(await d.insert("notes", { title, tag, n }));
    out.ids = ids.length;
    out.find = (await d.find("notes", { where: "tag = ?", args: ["x"], order: "n DESC", fields: ["title"] })).map((r) => r.title);
    out.findOne = (await d.findOne("notes", { where: "n > ?", args: [1], order: "n" })).title;
    out.get = (await d.get("notes", ids[0])).title;
    out.getBy = (await d.getBy("notes", "title", "c")).n;
    out.missing = await d.getBy("notes", "title", "zzz");
    out.list = (await d.list("notes", 2)).length;
    out.pluck = await d.pluck("notes", "title", { order: "_id" });
    out.distinct = (await d.distinct("notes", "tag")).sort();
    out.count = await d.count("notes", { where: "tag = ?", args: ["x"] });
    out.exists = [await d.exists("notes", { where: "title = ?", args: ["b"] }), await d.exists("notes", { where: "title = ?", args: ["q"] })];
    out.aggregate = await d.aggregate("notes", "tag, SUM(n) AS total", { group_by: "tag", where: "_owner = ?", args: [Goop.self.id] });
    out.updateById = await d.update("notes", ids[0], { n: 10 });
    out.updateWhereOld = await d.update("notes", { n: 20 }, "title = ?", ["b"]);
    out.updateWhere = await d.updateWhere("notes", { tag: "z" }, { where: "n >= ?", args: [10] });
    out.upsert = (await d.upsert("notes", "title", { title: "c", n: 30 })).status;
    out.after = await d.pluck("notes", "n", { where: "_owner = ?", args: [Goop.self.id], order: "_id" });
    out.notMine = await d.update("notes", 1, { n: 0 }).then((n) => "changed " + n, (e) => "refused: " + e.message);
    out.remove = await d.remove("notes", ids[0]);
    out.deleteOld = await d.delete("notes", "title = ?", ["b"]);
    out.deleteWhere = await d.deleteWhere("notes", { where: "1" });
    out.left = await d.pluck("notes", "title");
    out.schemas = Object.keys(await d.schemas()).sort();
    out.role = await d.role("notes");
    out.functions = (await d.functions()).map((f) => f.name).sort();
    out.listFunctions = (await d.list()).length === out.functions.length;
    const notes = await d.orm("notes");
    out.orm = {
      columns: notes.columns.map((c) => c.name),
      canInsert: notes.canInsert,
      validate: notes.validate({ n: "x" }).valid,
      id: await notes.insert({ title: "via handle" }),
      count: await notes.count(),
    };
    const cfg = await d.config("settings", { theme: "light" });
    await cfg.set("theme", "dark");
    const again = await d.config("settings", { theme: "light" });
    out.config = [cfg.theme, again.theme, again.get("theme")];
    return out;
  });

  assert.equal(got.ids, 3);
  assert.deepEqual(got.find, ["b", "a"]);
  assert.equal(got.findOne, "b");
  assert.equal(got.get, "a");
  assert.equal(got.getBy, 3);
  assert.equal(got.missing, null);
  assert.equal(got.list, 2);
  assert.deepEqual(got.pluck, ["host's", "a", "b", "c"]);
  assert.deepEqual(got.distinct, ["h", "x", "y"]);
  assert.equal(got.count, 2);
  assert.deepEqual(got.exists, [true, false]);
  assert.deepEqual(got.aggregate, [{ tag: "x", total: 3 }, { tag: "y", total: 3 }]);
  assert.deepEqual([got.updateById, got.updateWhereOld, got.updateWhere], [1, 1, 2]);
  assert.equal(got.upsert, "ok");
  assert.deepEqual(got.after, [10, 20, 30]);
  assert.match(got.notMine, /^refused: row not found or not owned by caller/);
  assert.deepEqual([got.remove, got.deleteOld, got.deleteWhere], [1, 1, 1]);
  assert.deepEqual(got.left, ["host's"], "the visitor's deletes never reach the host's row");
  assert.deepEqual(got.schemas, ["notes", "settings"]);
  assert.deepEqual(got.role, { role: "visitor", permissions: { read: true, insert: true, update: true, delete: true } });
  assert.deepEqual(got.functions, ["hello"]);
  assert.ok(got.listFunctions);
  assert.deepEqual(got.orm.columns, ["title", "tag", "n"]);
  assert.equal(got.orm.canInsert, true);
  assert.equal(got.orm.validate, false);
  assert.equal(typeof got.orm.id, "number");
  assert.equal(got.orm.count, 2);
  assert.deepEqual(got.config, ["dark", "dark", "dark"]);
});

test("a page may add to window.Goop but not replace what the SDK put there", async () => {
  const host = await start(folder("Host"));
  const page = await open(browser(), host.ownSite);
  const after = await page.evaluate(() => {
    const [goop, data, call, self] = [Goop, Goop.data, Goop.data.call, Goop.self.id];
    Goop.ui = { toast: () => "hi" };
    for (const attempt of [
      () => { Goop.data = {}; },
      () => { Goop.data.call = () => "forged"; },
      () => { Goop.self.id = "someone else"; },
      () => { delete Goop.group; },
      () => { window.Goop = {}; },
    ]) {
      try { attempt(); } catch { /* strict-mode pages get a TypeError; the result is the same */ }
    }
    return { ui: Goop.ui.toast(), kept: [Goop === goop, Goop.data === data, Goop.data.call === call,
      Goop.self.id === self, typeof Goop.group.join] };
  });
  assert.deepEqual(after, { ui: "hi", kept: [true, true, true, true, "function"] });
});
