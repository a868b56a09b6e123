// The dashboard in headless Chromium, against a running profilis-reader fed
// by loadgen (scripts/ci/80-browser.sh starts both). Environment:
//   PROFILIS_URL         dashboard URL, e.g. http://127.0.0.1:PORT/_profilis/
//   PROFILIS_TOKEN_FILE  file holding the reader's UI token
//   SCREENSHOT_DIR       where the screenshots go
//   CHROMIUM             browser binary (default /usr/bin/chromium)
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
  // A fresh profile every run; Playwright passes it as --user-data-dir.
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
});

after(async () => {
  await context?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

/** Polls `check` (async, returns a value or undefined) until it gives a value. */
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

const number = text => Number(String(text).replace(/[^0-9.]/g, ""));

test("a ?token= link opens a session and strips the token from the URL", async () => {
  const response = await page.goto(base + "?token=" + encodeURIComponent(token));
  assert.equal(response.status(), 200);
  assert.equal(page.url(), base, "redirected to the bare URL");
  assert.equal(await page.getAttribute("body", "data-view"), "dashboard");
  assert.ok(!(await page.content()).includes(token), "the token is not in the page");
  const cookies = await context.cookies(base);
  const session = cookies.find(c => c.name === "profilis_session");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
  assert.equal(await page.evaluate(() => document.cookie.includes("profilis_session")), false);
});

test("the page shows live data", async () => {
  await eventually("requests on the page", async () => {
    const v = await page.getAttribute("#card-total", "data-value");
    return Number(v) > 0 ? v : undefined;
  });
  assert.equal(await page.getAttribute("#status", "data-state"), "live");
});

test("request count and routes match metrics.json of the snapshot the page rendered", async () => {
  // The page and this fetch may see different snapshots (one per flush
  // interval): compare only when both are the same one.
  const { shown, json } = await eventually("a page rendering the current snapshot", async () => {
    const shown = await page.evaluate(() => ({
      generated: document.getElementById("dashboard").dataset.generatedNs,
      total: document.getElementById("card-total").dataset.value,
      totalText: document.getElementById("card-total").textContent,
      routes: [...document.querySelectorAll("#routes-table tbody tr[data-name]")].map(tr => ({
        name: tr.dataset.name,
        count: tr.querySelector("td[data-key=count]").textContent,
      })),
    }));
    const json = await (await page.request.get(base + "metrics.json")).json();
    return String(json.generated_ns) === shown.generated ? { shown, json } : undefined;
  });
  assert.equal(Number(shown.total), json.requests.total);
  assert.equal(number(shown.totalText), json.requests.total, "the card's text");
  const names = Object.keys(json.routes).sort();
  assert.ok(names.length > 0);
  assert.deepEqual(shown.routes.map(r => r.name).sort(), names);
  for (const r of shown.routes) {
    assert.equal(number(r.count), json.routes[r.name].count, r.name);
  }
  assert.ok(names.includes("/api/users/{id}"), "a loadgen route: " + names);
});

test("the route table sorts by a clicked column", async () => {
  const order = () => page.$$eval("#routes-table tbody tr[data-name]", rows =>
    rows.map(r => ({ name: r.dataset.name, count: Number(r.querySelector("td[data-key=count]").dataset.value) })));
  await page.click("#routes-table th[data-key=name]");
  let rows = await order();
  const byName = rows.map(r => r.name);
  assert.deepEqual(byName, [...byName].sort((a, b) => a.localeCompare(b)), "names A to Z first");
  await page.click("#routes-table th[data-key=name]");
  rows = await order();
  assert.deepEqual(rows.map(r => r.name), [...byName].reverse(), "reversed on the second click");
  await page.click("#routes-table th[data-key=count]");
  rows = await order();
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].count >= rows[i].count);
});

test("functions, queries, rings and charts are shown", async () => {
  const json = await (await page.request.get(base + "metrics.json")).json();
  await eventually("function and query rows", async () => {
    const n = await page.$$eval("#functions-table tbody tr[data-name], #queries-table tbody tr[data-name]", r => r.length);
    return n >= json.functions.length + json.queries.length && n > 0 ? n : undefined;
  });
  const ring = json.rings[0];
  const ringText = await page.textContent(`#rings [data-ring="${ring.ring_id}"]`);
  assert.ok(ringText.includes(ring.path), ringText);
  for (const counter of ["depth", "capacity", "received", "dropped", "abandoned", "torn"]) {
    assert.ok(await page.$(`#rings [data-ring="${ring.ring_id}"] b[data-key="${counter}"]`), counter);
  }
  assert.ok(ringText.includes("pid " + ring.writers[0].pid), "writer pid shown");
  const errorRows = await page.$$eval("#errors-table tbody tr", r => r.length);
  assert.ok(errorRows >= 1);
  // Every chart has drawn its data in its series colour, not just axes.
  const charts = [["chart-latency", "--s1"], ["chart-throughput", "--s1"], ["chart-errors", "--s3"], ["chart-histogram", "--s1"]];
  for (const [id, colour] of charts) {
    const painted = await page.$eval("#" + id, (c, colour) => {
      const probe = document.createElement("span");
      probe.style.color = "var(" + colour + ")";
      document.body.appendChild(probe);
      const [r, g, b] = getComputedStyle(probe).color.match(/\d+/g).map(Number);
      probe.remove();
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 200 && Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60) n++;
      }
      return n;
    }, colour);
    assert.ok(painted > 50, id + ": " + painted + " pixels of the series colour");
  }
});

test("both themes render; screenshots", async () => {
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const first = await page.getAttribute("html", "data-theme");
  assert.equal(first, "dark", "--ui-theme default");
  const dark = await background();
  await page.screenshot({ path: path.join(shots, "dashboard-dark.png"), fullPage: true });
  await page.click("#theme-toggle");
  assert.equal(await page.getAttribute("html", "data-theme"), "light");
  const light = await background();
  assert.notEqual(dark, light);
  await page.screenshot({ path: path.join(shots, "dashboard-light.png"), fullPage: true });
  // The choice is kept across reloads.
  await page.reload();
  assert.equal(await page.getAttribute("html", "data-theme"), "light");
  await page.click("#theme-toggle");
  for (const f of ["dashboard-dark.png", "dashboard-light.png"]) {
    assert.ok(fs.statSync(path.join(shots, f)).size > 10_000, f);
  }
});

test("without a session the login form asks for the token", async () => {
  await context.clearCookies();
  const response = await page.goto(base);
  assert.equal(response.status(), 401);
  assert.equal(await page.getAttribute("body", "data-view"), "login");
  await page.screenshot({ path: path.join(shots, "login.png") });
  await page.fill("#token", "not-the-token");
  await Promise.all([page.waitForNavigation(), page.click("#login button[type=submit]")]);
  assert.equal(await page.getAttribute("body", "data-view"), "login");
  assert.ok((await page.textContent("#login .error")).includes("not right"));
  await page.fill("#token", token);
  await Promise.all([page.waitForNavigation(), page.click("#login button[type=submit]")]);
  assert.equal(await page.getAttribute("body", "data-view"), "dashboard");
  assert.equal(page.url(), base);
  await eventually("data after logging in", async () =>
    Number(await page.getAttribute("#card-total", "data-value")) > 0 ? true : undefined);
});

test("no script errors or blocked resources", () => {
  // The login page's 401 is expected; anything else is a problem.
  const real = problems.filter(p => !p.includes("status of 401"));
  assert.deepEqual(real, []);
});
