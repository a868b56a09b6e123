// What every dashboard test in this folder shares: the environment the
// stage scripts/ci/80-browser.sh sets, a headless Chromium on a fresh
// profile with the page's problems collected, polling, and metrics.json.
//   PROFILIS_URL         dashboard URL, e.g. http://127.0.0.1:PORT/_profilis/
//   PROFILIS_TOKEN_FILE  file holding the reader's UI token
//   SCREENSHOT_DIR       where the screenshots go
//   CHROMIUM             browser binary (default /usr/bin/chromium)
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const base = process.env.PROFILIS_URL;
export const token = fs.readFileSync(process.env.PROFILIS_TOKEN_FILE, "utf8").trim();
export const shots = process.env.SCREENSHOT_DIR || "screenshots";
export const DEADLINE_MS = 30_000;

/**
 * A fresh browser profile and its page. Console errors, page errors and
 * answers of 400 and more (but 401) are pushed onto `problems`.
 */
export async function launch(problems) {
  assert.ok(base && base.endsWith("/"), "PROFILIS_URL is the dashboard URL");
  fs.mkdirSync(shots, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "profilis-chromium-"));
  // A fresh profile every run; Playwright passes it as --user-data-dir.
  const context = await chromium.launchPersistentContext(userDataDir, {
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
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", m => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", e => problems.push("page error: " + e.message));
  page.on("response", r => {
    if (r.status() >= 400 && r.status() !== 401) problems.push("HTTP " + r.status() + " " + r.url());
  });
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, page, close };
}

/** Polls `check` (async, returns a value or undefined) until it gives a value. */
export async function eventually(page, what, check) {
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

/** The reader's metrics.json, through the page's session. */
export const metricsOf = async page => (await page.request.get(base + "metrics.json")).json();
