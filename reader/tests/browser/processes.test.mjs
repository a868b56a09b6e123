// The processes panel in headless Chromium, against the running
// profilis-reader of scripts/ci/80-browser.sh (two loadgen workers of
// service "shop" are alive while it runs). What the page shows must be the
// processes section of metrics.json for the snapshot it rendered: each
// service's sum, each worker's pid, CPU, RSS and PSS, the reader's own
// process. Environment and browser set-up: session.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { base, token, shots, launch, eventually as poll, metricsOf } from "./session.mjs";

let browser, page;
const problems = [];

before(async () => {
  browser = await launch(problems);
  page = browser.page;
  const response = await page.goto(base + "?token=" + encodeURIComponent(token));
  assert.equal(response.status(), 200);
});

after(async () => {
  await browser?.close();
});

const eventually = (what, check) => poll(page, what, check);

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
    const json = await metricsOf(page);
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
