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
  const row = `#errors-table tbody tr.expandable:has(td[data-key=ts_ns][data-value="${e.ts_ns}"])`;
  assert.equal(await page.getAttribute(row, "aria-expanded"), "false");
  // A click that lands while a refresh rebuilds the rows is clicked again.
  const expanded = () => page.getAttribute(row, "aria-expanded");
  await eventually("the row opened by a click", async () => {
    if ((await expanded()) === "false") await page.click(row);
    return (await expanded()) === "true" ? true : undefined;
  });
  const shown = await page.$eval(row, r => r.nextElementSibling.querySelector("pre.stack").textContent);
  assert.equal(shown, e.stack);
  assert.equal(await page.getAttribute(row, "aria-expanded"), "true");
  // Stays open across the page's refreshes.
  await page.waitForTimeout(1200);
  assert.equal(await page.getAttribute(row, "aria-expanded"), "true");
  assert.equal(await page.$eval(row, r => r.nextElementSibling.classList.contains("detail")), true);
  await page.$eval(row, r => r.scrollIntoView({ block: "center" }));
  await page.screenshot({ path: path.join(shots, "error-stack.png") });
  // The keyboard closes it.
  await eventually("the row closed by Enter", async () => {
    if ((await expanded()) === "true") await page.press(row, "Enter");
    return (await expanded()) === "false" ? true : undefined;
  });
  assert.equal(await page.$eval(row, r => r.nextElementSibling?.classList.contains("detail") ?? false), false);
  await page.unroute("**/metrics.json");
  assert.deepEqual(problems, []);
});
