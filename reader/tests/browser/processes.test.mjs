// The processes panel in headless Chromium, against the running
// profilis-reader of scripts/ci/80-browser.sh (two loadgen workers of
// service "shop" are alive while it runs). What the page shows must be the
// processes section of metrics.json for the snapshot it rendered: each
// service's sum, each worker's pid, CPU, RSS and PSS, the reader's own
// process. Environment as for dashboard.test.mjs:
//   PROFILIS_URL, PROFILIS_TOKEN_FILE, SCREENSHOT_DIR, CHROMIUM
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const base = process.env.PROFILIS_URL;
const token = fs.readFileSync(process.env.PROFILIS_TOKEN_FILE, "utf8").trim();
const shots = process.env.SCREENSHOT_DIR || "screenshots";
const DEADLINE_MS = 30_000;

let context, page, userDataDir;
const problems = [];

before(async () => {
  assert.ok(base && base.endsWith("/"), "PROFILIS_URL is the dashboard URL");
  fs.mkdirSync(shots, { recursive: true });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "profilis-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 900 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.on("console", m => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", e => problems.push("page error: " + e.message));
  page.on("response", r => {
    if (r.status() >= 400 && r.status() !== 401) problems.push("HTTP " + r.status() + " " + r.url());
  });
  const response = await page.goto(base + "?token=" + encodeURIComponent(token));
  assert.equal(response.status(), 200);
});

after(async () => {
  await context?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

async function eventually(what, check) {
  const end = Date.now() + DEADLINE_MS;
  let last;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await page.waitForTimeout(50);
  }
  throw new Error("timed out waiting for " + what + (last ? ": " + last.message : ""));
}

/** The panel as shown, with the time of the snapshot rendered. */
const shown = () => page.evaluate(() => {
  const value = (tr, key) => {
    const td = tr.querySelector("td[data-key=" + key + "]");
    return td ? td.dataset.value : undefined;
  };
  const rows = sel => [...document.querySelectorAll("#processes-table tbody " + sel)];
  return {
    generated: document.getElementById("dashboard").dataset.generatedNs,
    services: rows("tr.merged").map(tr => ({
      service: tr.dataset.service,
      processes: value(tr, "processes"),
      cpu: value(tr, "cpu"),
      rss: value(tr, "rss"),
      pss: value(tr, "pss"),
    })),
    workers: rows("tr.worker").map(tr => ({
      service: tr.dataset.service,
      pid: tr.dataset.pid,
      text: tr.querySelector("td").textContent,
      cpu: value(tr, "cpu"),
      rss: value(tr, "rss"),
      pss: value(tr, "pss"),
      rssText: tr.querySelector("td[data-key=rss]").textContent,
    })),
    reader: {
      pid: document.getElementById("processes-reader").dataset.pid,
      text: document.getElementById("processes-reader").textContent,
    },
  };
});

const raw = v => (v == null ? "" : String(v));

test("each service's processes are shown with the figures of metrics.json", async () => {
  const { page: p, json } = await eventually("a rendering of a snapshot with both shop workers", async () => {
    const p = await shown();
    const json = await (await page.request.get(base + "metrics.json")).json();
    if (String(json.generated_ns) !== p.generated) return undefined;
    const shop = json.processes.services.find(s => s.service === "shop");
    return shop && shop.workers.length >= 2 && shop.workers.every(w => w.cpu_percent != null) ? { page: p, json } : undefined;
  });
  const services = json.processes.services;
  assert.deepEqual(p.services.map(s => s.service), services.map(s => s.service ?? "(no service name)"));
  for (const s of services) {
    const row = p.services.find(r => r.service === (s.service ?? "(no service name)"));
    assert.equal(row.processes, raw(s.processes));
    assert.equal(row.cpu, raw(s.cpu_percent));
    assert.equal(row.rss, raw(s.rss_bytes));
    assert.equal(row.pss, raw(s.pss_bytes));
    const rows = p.workers.filter(w => w.service === row.service);
    assert.deepEqual(rows.map(w => w.pid), s.workers.map(w => String(w.pid)), "one row per process, by pid");
    for (const w of s.workers) {
      const r = rows.find(x => x.pid === String(w.pid));
      assert.equal(r.text, "pid " + w.pid);
      assert.equal(r.cpu, raw(w.cpu_percent));
      assert.equal(r.rss, raw(w.rss_bytes));
      assert.equal(r.pss, raw(w.pss_bytes));
      assert.match(r.rssText, /^[0-9.]+ (KiB|MiB|GiB)$/);
    }
  }
  const shop = services.find(s => s.service === "shop");
  assert.equal(shop.rss_bytes, shop.workers.reduce((a, w) => a + w.rss_bytes, 0), "the service sums its workers");
  assert.ok(shop.workers.some(w => w.rss_bytes > 0 && w.cpu_seconds > 0), "loadgen workers use memory and CPU");
  assert.equal(p.reader.pid, String(json.processes.reader.pid));
  assert.ok(p.reader.text.startsWith("Reader (pid " + json.processes.reader.pid + "): CPU "), p.reader.text);
  await page.locator("[data-panel=processes]").screenshot({ path: path.join(shots, "processes.png") });
});

test("no script errors or blocked resources", () => {
  assert.deepEqual(problems, []);
});
