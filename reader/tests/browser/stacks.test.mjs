// Stack traces in the dashboard's recent errors, in headless Chromium,
// against the reader scripts/ci/80-browser.sh runs (its second loadgen
// worker attaches a stack trace to every failed request). A row whose error
// has a stack expands, on click or from the keyboard, into the stack as
// metrics.json gives it, and collapses again. Environment and browser
// set-up: session.mjs.
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

const metrics = () => metricsOf(page);

test("metrics.json gives recent errors their stack traces", async () => {
  const json = await eventually("an error with a stack", async () => {
    const v = await metrics();
    return v.errors.some(e => e.stack) ? v : undefined;
  });
  for (const e of json.errors) {
    assert.ok(e.stack === undefined || (typeof e.stack === "string" && e.stack.length > 0), JSON.stringify(e));
  }
  const e = json.errors.find(e => e.stack);
  assert.ok(e.stack.startsWith("Traceback (most recent call last):\n"), e.stack);
  // Redacted in the writer: frame locations kept, the numbers and quoted
  // values of source lines and of the message go (docs/privacy.md).
  assert.ok(e.stack.includes('  File "/srv/shop/orders.py", line 41, in place_order\n'), e.stack);
  assert.ok(e.stack.endsWith("TimeoutError: inventory service timed out after ? ms\n"), e.stack);
});

test("a recent error's row expands into its stack and collapses again", async () => {
  // Errors arrive faster than the page refreshes (it lists the latest 100):
  // the page is held on one live snapshot that has stacks, so the row under
  // test stays on it.
  const json = await eventually("an error with a stack", async () => {
    const v = await metrics();
    return v.errors.some(e => e.stack) ? v : undefined;
  });
  await page.route("**/metrics.json", route => route.fulfill({ json }));
  await eventually("the page on the held snapshot", async () =>
    (await page.getAttribute("#dashboard", "data-generated-ns")) === String(json.generated_ns) ? true : undefined);
  const withStack = json.errors.filter(e => e.stack);
  const rows = await page.$$eval("#errors-table tbody tr.expandable", rows =>
    rows.map(r => r.querySelector("td[data-key=ts_ns]").dataset.value));
  assert.equal(rows.length, withStack.length, "one expandable row per error with a stack");
  const rowCount = await page.$$eval("#errors-table tbody tr", rows => rows.length);
  assert.equal(rowCount, json.errors.length, "nothing expanded yet");
  const e = withStack[0];
  // The row is named by its detail id (time and route, as app.js keys it)
  // and read with the row after it in one evaluation, the lookup included:
  // `page.$eval` finds the element and runs the function in two steps, and
  // a refresh in between hands it a row already replaced (detached: no row
  // after it).
  const row = `#errors-table tbody tr.expandable[data-detail-id="${e.ts_ns} ${e.route}"]`;
  const state = () => page.evaluate(selector => {
    const r = document.querySelector(selector);
    if (!r) return { expanded: null, stack: null };
    const next = r.nextElementSibling;
    return {
      expanded: r.getAttribute("aria-expanded"),
      stack: next?.classList.contains("detail") ? next.querySelector("pre.stack")?.textContent ?? null : null,
    };
  }, row);
  const closed = { expanded: "false", stack: null };
  const open = { expanded: "true", stack: e.stack };
  const same = (a, b) => a.expanded === b.expanded && a.stack === b.stack;
  assert.deepEqual(await state(), closed);
  // A click that lands while a refresh rebuilds the rows is clicked again.
  await eventually("the row opened by a click, its stack below it", async () => {
    const now = await state();
    if (now.expanded === "false") await page.click(row);
    return same(await state(), open) ? true : undefined;
  });
  // Stays open across the page's refreshes.
  await page.waitForTimeout(1200);
  assert.deepEqual(await state(), open);
  await page.evaluate(selector => document.querySelector(selector).scrollIntoView({ block: "center" }), row);
  await page.screenshot({ path: path.join(shots, "error-stack.png") });
  // The keyboard closes it.
  await eventually("the row closed by Enter", async () => {
    if ((await state()).expanded === "true") await page.press(row, "Enter");
    return same(await state(), closed) ? true : undefined;
  });
  await page.unroute("**/metrics.json");
  assert.deepEqual(problems, []);
});
