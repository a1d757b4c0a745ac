// Test harness: goop peers as real `goop run` processes on 127.0.0.1 (OS-chosen ports), each
// with its own viewer, and a headless Chromium to open their pages. Loopback only.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const GOOP = process.env.GOOP_BIN || resolve(here, "../target/debug/goop");

const running = [];
const folders = [];

/** Runs a goop command to completion; returns stdout. */
export function goop(...args) {
  return execFileSync(GOOP, args, { encoding: "utf8", env: { ...process.env, RUST_LOG: "" } });
}

/** A peer folder from a template, with a label and mDNS off (tests stay on loopback). */
export function folder(label, template = "starter") {
  const dir = mkdtempSync(join(tmpdir(), "goop-browser-"));
  folders.push(dir);
  goop("init", dir, "--template", template);
  const configPath = join(dir, "goop.json");
  const config = JSON.parse(readFileSync(configPath, "utf8"));
  config.profile.label = label;
  config.p2p.mdns = false;
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return dir;
}

/** Starts `goop run` on `dir`; resolves once it printed its address and viewer URL. */
export function start(dir, connect = []) {
  const args = ["run", "--dir", dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--viewer", "127.0.0.1:0"];
  for (const addr of connect) args.push("--connect", addr);
  const child = spawn(GOOP, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } });
  const peer = { dir, child, id: goop("id", "--dir", dir).trim() };
  running.push(peer);
  return new Promise((resolvePeer, reject) => {
    const timer = setTimeout(() => reject(new Error("goop run printed nothing in 30 s")), 30_000);
    child.on("exit", (code) => reject(new Error(`goop run exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const listening = line.match(/^listening (\S+)$/);
      const viewer = line.match(/^viewer http:\/\/localhost:(\d+)\/\s+\(your site: (\S+)\)$/);
      if (listening && listening[1].includes("/tcp/")) peer.addr = listening[1];
      if (viewer) [peer.viewerPort, peer.ownSite] = [Number(viewer[1]), viewer[2]];
      if (peer.addr && peer.viewerPort) {
        clearTimeout(timer);
        peer.viewer = `http://localhost:${peer.viewerPort}`;
        resolvePeer(peer);
      }
    });
  });
}

/** The viewer's /api/status. */
export async function status(peer) {
  const response = await fetch(`${peer.viewer}/api/status`);
  return response.json();
}

/** Waits until `visitor`'s viewer shows `host` connected; returns the host's site URL there. */
export async function siteOf(visitor, host) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const known = (await status(visitor)).peers.find((p) => p.id === host.id && p.connected);
    if (known) return known.site;
    if (Date.now() > deadline) throw new Error(`${host.id} never connected to ${visitor.id}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * A headless Chromium for the calling test file: launched before its tests, closed after
 * them together with every peer started. Returns a getter for the browser.
 */
export function withBrowser() {
  let launched;
  before(async () => {
    launched = await launch();
  });
  after(async () => {
    await launched?.close();
    stopAll();
  });
  return () => launched;
}

/** Headless Debian Chromium, as the CI machine has it. */
function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** A fresh page (own cookies and storage) at `url`, with the page's errors made visible. */
export async function open(b, url) {
  const page = await (await b.newContext()).newPage();
  page.on("pageerror", (e) => console.error(`page error at ${url}: ${e.message}`));
  await page.goto(url);
  return page;
}

/** Stops every peer this process started and removes their folders. */
export function stopAll() {
  for (const peer of running.splice(0)) peer.child.kill("SIGTERM");
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
}
