// The dashboard in headless Chromium, against a running profilis-reader fed
// by two loadgen workers of service "shop" and a crashed worker of the same
// service (scripts/ci/80-browser.sh starts them). Environment and browser
// set-up: session.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { base, token, shots, launch, eventually as poll, metricsOf } from "./session.mjs";

let browser, page, context;
const problems = [];

before(async () => {
  browser = await launch(problems);
  page = browser.page;
  context = browser.context;
});

after(async () => {
  await browser?.close();
});

const eventually = (what, check) => poll(page, what, check);

const number = text => Number(String(text).replace(/[^0-9.]/g, ""));
const metrics = () => metricsOf(page);

/** Pixels of canvas `id` drawn in the colour of CSS variable `colour`. */
async function painted(id, colour) {
  return page.$eval("#" + id, (c, colour) => {
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
}

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
    const json = await metricsOf(page);
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

/** Polls until the page shows the snapshot metrics.json serves; returns
 *  both (`read` runs in the page and gives what the test compares). */
async function sameSnapshot(what, read, ready = () => true) {
  return eventually(what, async () => {
    const shown = await page.evaluate(read);
    const json = await metrics();
    return String(json.generated_ns) === shown.generated && ready(json) ? { shown, json } : undefined;
  });
}

test("the route table is ordered by p95, slowest first, and shows each route's bytes", async () => {
  const { shown, json } = await sameSnapshot("the routes of the current snapshot", () => ({
    generated: document.getElementById("dashboard").dataset.generatedNs,
    sort: document.querySelector("#routes-table th[data-key=p95_ns]").getAttribute("aria-sort"),
    rows: [...document.querySelectorAll("#routes-table tbody tr[data-name]")].map(tr => {
      const cell = k => tr.querySelector("td[data-key=" + k + "]");
      return {
        name: tr.dataset.name,
        p95: Number(cell("p95_ns").dataset.value),
        bytesIn: Number(cell("bytes_in").dataset.value),
        bytesOut: Number(cell("bytes_out").dataset.value),
        bytesOutText: cell("bytes_out").textContent,
      };
    }),
  }));
  assert.equal(shown.sort, "descending", "p95 is the default sort, descending");
  const stats = new Map(json.route_stats.map(r => [r.name, r]));
  assert.deepEqual(shown.rows.map(r => r.name).sort(), [...stats.keys()].sort());
  for (let i = 1; i < shown.rows.length; i++) {
    assert.ok(shown.rows[i - 1].p95 >= shown.rows[i].p95, "slowest first: " + JSON.stringify(shown.rows));
  }
  for (const r of shown.rows) {
    const s = stats.get(r.name);
    assert.equal(r.p95, s.p95_ns, r.name);
    assert.equal(r.bytesIn, s.bytes_in, r.name + " bytes in");
    assert.equal(r.bytesOut, s.bytes_out, r.name + " bytes out");
    assert.match(r.bytesOutText, /^[0-9.]+ (B|KiB|MiB|GiB|TiB|PiB)$/, r.bytesOutText);
  }
  assert.ok(shown.rows.some(r => r.bytesIn > 0 && r.bytesOut > 0), "loadgen sends bytes both ways");
  // A click on a header sorts by it: p95 again turns it ascending, bytes out
  // starts descending.
  const column = key => page.$$eval("#routes-table tbody tr[data-name]", (rows, key) =>
    rows.map(r => Number(r.querySelector("td[data-key=" + key + "]").dataset.value)), key);
  await page.click("#routes-table th[data-key=p95_ns]");
  assert.equal(await page.getAttribute("#routes-table th[data-key=p95_ns]", "aria-sort"), "ascending");
  const up = await column("p95_ns");
  for (let i = 1; i < up.length; i++) assert.ok(up[i - 1] <= up[i], "ascending: " + up);
  await page.click("#routes-table th[data-key=bytes_out]");
  const out = await column("bytes_out");
  for (let i = 1; i < out.length; i++) assert.ok(out[i - 1] >= out[i], "bytes out, descending: " + out);
  await page.click("#routes-table th[data-key=p95_ns]");
});

test("the exception panel shows the types and counts of metrics.json", async () => {
  const { shown, json } = await sameSnapshot("exception types on the page", () => ({
    generated: document.getElementById("dashboard").dataset.generatedNs,
    total: document.getElementById("exceptions-total").dataset.value,
    rows: [...document.querySelectorAll("#exceptions-table tbody tr[data-name]")].map(tr => {
      const cell = k => tr.querySelector("td[data-key=" + k + "]");
      return {
        exception: tr.dataset.name,
        count: Number(cell("count").dataset.value),
        countText: cell("count").textContent,
        share: cell("share").textContent,
        routes: cell("names").textContent,
      };
    }),
  }), j => {
    const types = (j.exceptions.types || []).map(t => t.exception);
    return types.includes("TimeoutError") && types.includes("(none)");
  });
  const types = json.exceptions.types;
  assert.equal(Number(shown.total), json.exceptions.errors);
  assert.deepEqual(shown.rows.map(r => r.exception), types.map(t => t.exception), "most errors first");
  for (const [i, t] of types.entries()) {
    const r = shown.rows[i];
    assert.equal(r.count, t.count, t.exception);
    assert.equal(number(r.countText), t.count, t.exception + " text");
    assert.ok(r.share.endsWith("%"), r.share);
    for (const n of t.names) assert.ok(r.routes.includes(n.name + " ("), t.exception + ": " + r.routes);
  }
  assert.equal(types.reduce((n, t) => n + t.count, 0), json.exceptions.errors);
  const timeout = types.find(t => t.exception === "TimeoutError");
  assert.ok(timeout.names.some(n => n.name.startsWith("/api/")), "loadgen's 5xx happen on its routes");
  await page.locator("[data-panel=exceptions]").screenshot({ path: path.join(shots, "exceptions.png") });
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
  const json = await metricsOf(page);
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
    const n = await painted(id, colour);
    assert.ok(n > 50, id + ": " + n + " pixels of the series colour");
  }
});

test("the loss panel shows each producer's losses as metrics.json counts them", async () => {
  const json = await eventually("the crashed worker's losses", async () => {
    const j = await metrics();
    return (j.producer_losses || []).some(p => p.abandoned > 0 && p.ring_full > 0 && p.alive === false) ? j : undefined;
  });
  const crashed = json.producer_losses.find(p => p.abandoned > 0);
  const key = crashed.ring_id + "/" + crashed.pid;
  const row = await eventually("its row on the page", () => page.evaluate(key => {
    const tr = [...document.querySelectorAll("#losses-table tbody tr")].find(r => r.dataset.name === key);
    if (!tr) return undefined;
    const cell = k => tr.querySelector("td[data-key=" + k + "]");
    return {
      who: cell("who").textContent,
      state: cell("state").textContent,
      ring_full: Number(cell("ring_full").dataset.value),
      abandoned: Number(cell("abandoned").dataset.value),
      total: Number(cell("total").dataset.value),
    };
  }, key));
  assert.equal(row.who, "pid " + crashed.pid + " (shop)");
  assert.equal(row.state, "dead");
  assert.equal(row.ring_full, crashed.ring_full, "the worker is dead: its counts are final");
  assert.equal(row.abandoned, 1, "its unfinished claim");
  assert.equal(row.total, crashed.ring_full + crashed.overwritten + crashed.abandoned + crashed.torn);
  assert.ok((await page.textContent("#losses-total")).includes("events lost"));
  assert.ok(await painted("chart-losses", "--s2") > 20, "the loss time series is drawn");
  await page.locator("[data-panel=losses]").screenshot({ path: path.join(shots, "losses.png") });
});

test("the post-mortem panel lists the dead worker's last events, with a JSONL download", async () => {
  const json = await eventually("a post-mortem", async () => {
    const j = await metrics();
    return (j.postmortems || []).length ? j : undefined;
  });
  const pm = json.postmortems[0];
  assert.equal(pm.service, "shop");
  assert.equal(pm.losses.abandoned, 1);
  assert.ok(pm.events_kept > 0 && pm.events_kept <= 100, "--postmortem-events default");
  const doc = await (await page.request.get(base + "postmortem/" + pm.ring_id + "/" + pm.pid + ".json")).json();
  assert.equal(doc.events.length, pm.events_kept);
  const shown = await eventually("the events on the page", async () => {
    const seqs = await page.$$eval("#postmortem-events tbody tr[data-name]", rows => rows.map(r => Number(r.dataset.name)));
    return seqs.length === doc.events.length ? seqs : undefined;
  });
  const bySeq = (a, b) => a - b;
  assert.deepEqual(shown.sort(bySeq), doc.events.map(e => e.seq).sort(bySeq));
  assert.ok((await page.textContent("#postmortem-title")).includes("pid " + pm.pid));
  const href = await page.$eval(`#postmortem-list tr[data-key="${pm.ring_id}/${pm.pid}"] a.download`, a => a.getAttribute("href"));
  const download = await page.request.get(base + href);
  assert.equal(download.status(), 200);
  const lines = (await download.text()).trim().split("\n").map(l => JSON.parse(l));
  assert.deepEqual(lines, doc.events, "the download holds the same events");
  // The rings panel shows the worker dead, with the time it was last seen.
  const writer = await page.$eval(`#rings span[data-pid="${pm.pid}"]`, s => ({ alive: s.dataset.alive, text: s.textContent }));
  assert.equal(writer.alive, "false");
  assert.ok(writer.text.includes("dead, last seen"), writer.text);
  await page.locator("[data-panel=postmortem]").screenshot({ path: path.join(shots, "postmortem.png") });
});

test("a service's workers are merged, each worker one click away", async () => {
  const json = await eventually("service shop with two live workers", async () => {
    const j = await metrics();
    const shop = (j.services || []).find(s => s.service === "shop");
    return shop && shop.workers.length >= 2 ? j : undefined;
  });
  const route = "/api/users/{id}";
  const merged = `#services [data-service="shop"] tr.merged[data-name="${route}"]`;
  await eventually("the route row", async () => ((await page.$(merged)) ? true : undefined));
  await page.click(merged);
  const rows = await eventually("one row per worker", () => page.evaluate(selector => {
    const tr = document.querySelector(selector);
    if (!tr || tr.getAttribute("aria-expanded") !== "true") return undefined;
    const workers = [];
    for (let n = tr.nextElementSibling; n && n.classList.contains("worker"); n = n.nextElementSibling) {
      workers.push({ pid: n.dataset.pid, count: Number(n.querySelector("td[data-key=count]").dataset.value) });
    }
    return { total: Number(tr.querySelector("td[data-key=count]").dataset.value), workers };
  }, merged));
  assert.ok(rows.workers.length >= 2, JSON.stringify(rows));
  assert.equal(rows.workers.reduce((n, w) => n + w.count, 0), rows.total, "the workers add up to the merged count");
  const shop = json.services.find(s => s.service === "shop");
  for (const w of rows.workers) assert.ok(shop.workers.some(x => String(x.pid) === w.pid), w.pid);
  await page.locator("[data-panel=services]").screenshot({ path: path.join(shots, "services.png") });
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
  for (const f of ["dashboard-dark.png", "dashboard-light.png", "losses.png", "postmortem.png", "services.png"]) {
    assert.ok(fs.statSync(path.join(shots, f)).size > 10_000, f);
  }
});

/** What sticks out to the right of the viewport: the document's own width
 *  and every panel, chart, card and the top bar that does not fit. */
async function overflow() {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    if (document.documentElement.scrollWidth > width) {
      out.push("document " + document.documentElement.scrollWidth + " > " + width);
    }
    for (const e of document.querySelectorAll(".topbar, .panel, .card, canvas, .login form")) {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && (r.right > width + 0.5 || r.left < -0.5)) {
        out.push((e.id || e.className || e.tagName) + " " + Math.round(r.left) + ".." + Math.round(r.right));
      }
    }
    return out;
  });
}

test("the page fits phones and narrow windows: no sideways scrolling at 360, 420, 768, 1440 px", async () => {
  const size = page.viewportSize();
  for (const width of [360, 420, 768, 1440]) {
    await page.setViewportSize({ width, height: 900 });
    assert.deepEqual(await overflow(), [], width + " px");
    // The charts are drawn again shortly after a resize: screenshot then.
    await eventually("the charts drawn at " + width + " px", async () =>
      (await page.$eval("#chart-latency", c =>
        c.width === Math.round(c.clientWidth * (window.devicePixelRatio || 1)))) ? true : undefined);
    await page.screenshot({ path: path.join(shots, `dashboard-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(size);
});

// Clears the session cookie with the main page away from the dashboard: a
// dashboard left open reloads itself on its next 401, and that reload would
// interrupt the test's own navigation.
async function signOutQuietly() {
  await page.goto("about:blank");
  await context.clearCookies();
}

test("without a session the login form asks for the token", async () => {
  await signOutQuietly();
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

test("the login form fits a phone", async () => {
  const size = page.viewportSize();
  const login = await context.newPage();
  await login.setViewportSize({ width: 360, height: 740 });
  await signOutQuietly();
  const response = await login.goto(base);
  assert.equal(response.status(), 401);
  const sticking = await login.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const form = document.querySelector(".login form").getBoundingClientRect();
    return document.documentElement.scrollWidth > width || form.right > width || form.left < 0;
  });
  assert.equal(sticking, false);
  await login.screenshot({ path: path.join(shots, "login-360.png") });
  await login.close();
  assert.deepEqual(page.viewportSize(), size);
});

test("logging out ends the session on the server, not only in the browser", async () => {
  await page.goto(base + "?token=" + encodeURIComponent(token));
  assert.equal(await page.getAttribute("body", "data-view"), "dashboard");
  const session = (await context.cookies(base)).find(c => c.name === "profilis_session");
  assert.ok(session, "a session cookie");
  await Promise.all([page.waitForNavigation(), page.click(".logout button[type=submit]")]);
  assert.equal(await page.getAttribute("body", "data-view"), "login");
  // The old cookie, put back as if copied before logging out, opens nothing.
  await context.addCookies([session]);
  assert.equal((await page.request.get(base + "metrics.json")).status(), 401);
  await context.clearCookies();
});

test("no script errors or blocked resources", () => {
  // The login page's 401 is expected; anything else is a problem.
  const real = problems.filter(p => !p.includes("status of 401"));
  assert.deepEqual(real, []);
});
