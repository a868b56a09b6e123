// The dashboard mounted in a Flask app (profilis.flask.ui), in headless
// Chromium: signs in with the token through the app, waits until the page
// shows the requests the app served, and reads the computed style the
// app's custom CSS gives `.metric-card` and `.dashboard-header`. Prints one
// JSON line with what it saw; python/tests/test_classic_browser.py checks it.
//   node flask_dashboard.mjs URL TOKEN ROUTE COUNT
// CHROMIUM: the browser binary (default /usr/bin/chromium).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const [base, token, route, count] = process.argv.slice(2);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "profilis-flask-chromium-"));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1400, height: 900 },
});
const problems = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", e => problems.push("page error: " + e.message));
  page.on("response", r => { if (r.status() >= 400) problems.push("HTTP " + r.status() + " " + r.url()); });
  const response = await page.goto(base + "?token=" + encodeURIComponent(token));
  const end = Date.now() + 30_000;
  let shown;
  while (Date.now() < end) {
    shown = await page.evaluate(route => ({
      total: Number(document.getElementById("card-total")?.dataset.value || 0),
      row: document.querySelector(`#routes-table tbody tr[data-name="${route}"] td[data-key=count]`)?.textContent,
      state: document.getElementById("status")?.dataset.state,
    }), route);
    if (shown.row !== undefined && Number(shown.row.replace(/[^0-9]/g, "")) >= Number(count)) break;
    await page.waitForTimeout(100);
  }
  const style = await page.evaluate(() => {
    const card = getComputedStyle(document.querySelector(".metric-card"));
    const header = getComputedStyle(document.querySelector(".dashboard-header"));
    return {
      cardBorderLeftColor: card.borderLeftColor,
      cardBorderLeftWidth: card.borderLeftWidth,
      headerLetterSpacing: header.letterSpacing,
      title: document.title,
      theme: document.documentElement.dataset.theme || document.body.dataset.theme || "",
    };
  });
  console.log(JSON.stringify({ status: response.status(), url: page.url(), shown, style, problems }));
} finally {
  await context.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
