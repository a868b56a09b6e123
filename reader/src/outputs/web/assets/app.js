// Profilis dashboard: fetches metrics.json every data-refresh-ms and hands
// it to each registered panel. A panel is a function (data) -> void that
// updates its own <section data-panel=NAME>; add one with
// Profilis.panel(NAME, fn). Charts are drawn on plain canvas. Text from the
// data only ever goes through textContent, never HTML.
"use strict";

const Profilis = (() => {
  const panels = [];
  let last = null;

  // ---------- formatting ----------
  function duration(ns) {
    if (ns == null || !isFinite(ns)) return "–";
    if (ns === 0) return "0";
    if (ns < 1e3) return ns.toFixed(0) + " ns";
    if (ns < 1e6) return (ns / 1e3).toPrecision(3) + " µs";
    if (ns < 1e9) return (ns / 1e6).toPrecision(3) + " ms";
    return (ns / 1e9).toPrecision(3) + " s";
  }
  function count(n) {
    if (n == null || !isFinite(n)) return "–";
    return Math.round(n).toLocaleString("en-US");
  }
  function rate(n) {
    if (n == null || !isFinite(n)) return "–";
    if (n >= 100) return count(n);
    return n.toFixed(n >= 10 ? 1 : 2);
  }
  function percent(r) {
    if (r == null || !isFinite(r)) return "–";
    const p = r * 100;
    return (p === 0 ? "0" : p < 0.1 ? p.toFixed(3) : p.toFixed(2)) + "%";
  }
  function bytes(n) {
    if (n == null || !isFinite(n)) return "–";
    if (n < 1024) return Math.round(n) + " B";
    const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = n / 1024, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return v.toPrecision(3) + " " + units[u];
  }
  function clock(ns, millis) {
    const d = new Date(ns / 1e6);
    const pad = (v, n = 2) => String(v).padStart(n, "0");
    let s = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (millis) s += "." + pad(d.getMilliseconds(), 3);
    return s;
  }
  const fmt = { duration, count, rate, percent, bytes, clock };

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) if (attrs[k] != null) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function set(id, text, value) {
    const e = document.getElementById(id);
    if (!e) return;
    e.textContent = text;
    if (value !== undefined) e.dataset.value = String(value);
  }
  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // ---------- charts ----------
  function prepare(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, w, h };
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }
  function noData(ctx, w, h) {
    ctx.fillStyle = css("--muted");
    ctx.textAlign = "center";
    ctx.fillText("no data yet", w / 2, h / 2);
  }

  // series: [{key, color}], points: objects with ts_ns and the keys, one
  // per step of stepNs (a lone point is drawn across its step).
  function lineChart(canvas, points, series, yFormat, stepNs) {
    const { ctx, w, h } = prepare(canvas);
    const left = 64, right = 10, top = 8, bottom = 22;
    const pw = w - left - right, ph = h - top - bottom;
    if (!points.length || pw <= 0) return noData(ctx, w, h);
    let max = 0;
    for (const p of points) for (const s of series) max = Math.max(max, p[s.key] || 0);
    max = niceMax(max);
    const t0 = points[0].ts_ns;
    const t1 = points.length === 1 ? t0 + stepNs : points[points.length - 1].ts_ns;
    const x = t => left + ((t - t0) / (t1 - t0)) * pw;
    const y = v => top + ph - (v / max) * ph;
    ctx.strokeStyle = css("--grid");
    ctx.fillStyle = css("--muted");
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4, yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + pw, yy); ctx.stroke();
      ctx.fillText(yFormat(v), left - 6, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const labels = Math.min(5, points.length);
    for (let i = 0; i < labels; i++) {
      const t = labels === 1 ? t0 : t0 + ((t1 - t0) * i) / (labels - 1);
      ctx.fillText(clock(t), Math.min(Math.max(x(t), left + 24), left + pw - 24), top + ph + 6);
    }
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    for (const s of series) {
      ctx.strokeStyle = css(s.color);
      ctx.beginPath();
      points.forEach((p, i) => {
        const xx = x(p.ts_ns), yy = y(p[s.key] || 0);
        if (i === 0) ctx.moveTo(xx, yy); else ctx.lineTo(xx, yy);
      });
      if (points.length === 1) ctx.lineTo(x(t1), y(points[0][s.key] || 0));
      ctx.stroke();
    }
  }

  function barChart(canvas, bins) {
    const { ctx, w, h } = prepare(canvas);
    const left = 50, right = 10, top = 8, bottom = 22;
    const pw = w - left - right, ph = h - top - bottom;
    const shown = bins.filter(b => b.count > 0);
    if (!shown.length || pw <= 0) return noData(ctx, w, h);
    // Trim empty bins at both ends, keep the ones in between.
    const first = bins.indexOf(shown[0]), lastBin = bins.lastIndexOf(shown[shown.length - 1]);
    const used = bins.slice(first, lastBin + 1);
    const max = niceMax(Math.max(...used.map(b => b.count)));
    const bw = pw / used.length;
    ctx.strokeStyle = css("--grid");
    ctx.fillStyle = css("--muted");
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4, yy = Math.round(top + ph - (v / max) * ph) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + pw, yy); ctx.stroke();
      ctx.fillText(count(v), left - 6, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const every = Math.max(1, Math.ceil(used.length / Math.max(1, Math.floor(pw / 60))));
    used.forEach((b, i) => {
      const bh = (b.count / max) * ph;
      ctx.fillStyle = css("--s1");
      ctx.fillRect(left + i * bw + 1, top + ph - bh, Math.max(1, bw - 2), bh);
      if (i % every === 0) {
        ctx.fillStyle = css("--muted");
        ctx.fillText("≤" + duration(b.le_ns), left + i * bw + bw / 2, top + ph + 6);
      }
    });
  }

  // ---------- sortable tables ----------
  // columns: [{key, label, value(row), text(row), cls(row), left}]
  // detail: optional {id(row), text(row)}: a row whose text is non-empty
  // expands (click, Enter or Space) into a row below showing it.
  function sortTable(table, columns, sortKey, rowName, detail) {
    const state = { key: sortKey, desc: true, rows: [], open: new Set() };
    const thead = el("thead"), tr = el("tr");
    columns.forEach(c => {
      const th = el("th", { "data-key": c.key, scope: "col", class: c.left ? "left" : null }, c.label);
      th.addEventListener("click", () => {
        if (state.key === c.key) state.desc = !state.desc;
        else { state.key = c.key; state.desc = c.key !== columns[0].key; }
        render();
      });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    const tbody = el("tbody");
    table.replaceChildren(thead, tbody);
    function render() {
      const col = columns.find(c => c.key === state.key) || columns[0];
      const rows = state.rows.slice().sort((a, b) => {
        const va = col.value(a), vb = col.value(b);
        const cmp = typeof va === "string" ? va.localeCompare(vb) : va - vb;
        return state.desc ? -cmp : cmp;
      });
      for (const th of thead.querySelectorAll("th")) {
        if (th.dataset.key === state.key) th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
        else th.removeAttribute("aria-sort");
      }
      // A refresh rebuilds the rows: the row that had the keyboard focus
      // gets it back, so Enter and Space keep working between refreshes.
      const active = document.activeElement;
      const focused = active && tbody.contains(active) ? active.dataset.detailId : undefined;
      const body = document.createDocumentFragment();
      if (!rows.length) {
        const r = el("tr", { class: "empty" });
        r.appendChild(el("td", { colspan: columns.length }, "nothing in the window yet"));
        body.appendChild(r);
      }
      for (const row of rows) {
        const r = el("tr", rowName ? { "data-name": rowName(row) } : null);
        for (const c of columns) {
          const td = el("td", { "data-key": c.key, "data-value": String(c.value(row)) }, c.text(row));
          const extra = [c.left ? "left" : "", c.cls ? c.cls(row) : ""].join(" ").trim();
          if (extra) td.className = extra;
          r.appendChild(td);
        }
        body.appendChild(r);
        const more = detail ? detail.text(row) : "";
        if (more) expandable(r, detail.id(row), more, body);
      }
      tbody.replaceChildren(body);
      if (focused !== undefined) {
        const again = tbody.querySelector(`tr[data-detail-id="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
    }
    function expandable(r, id, text, body) {
      const open = state.open.has(id);
      r.classList.add("expandable");
      r.dataset.detailId = String(id);
      r.setAttribute("aria-expanded", String(open));
      r.tabIndex = 0;
      const toggle = () => {
        if (!state.open.delete(id)) state.open.add(id);
        render();
      };
      r.addEventListener("click", toggle);
      r.addEventListener("keydown", ev => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); toggle(); }
      });
      if (!open) return;
      const d = el("tr", { class: "detail" });
      const td = el("td", { colspan: columns.length });
      td.appendChild(el("pre", { class: "stack" }, text));
      d.appendChild(td);
      body.appendChild(d);
    }
    return rows => { state.rows = rows; render(); };
  }

  function latencyColumns(label) {
    return [
      { key: "name", label, value: r => r.name, text: r => r.name },
      { key: "count", label: "Count", value: r => r.count, text: r => count(r.count) },
      { key: "errors", label: "Errors", value: r => r.errors, text: r => count(r.errors), cls: r => (r.errors ? "bad" : "") },
      { key: "error_rate", label: "Error rate", value: r => r.error_rate, text: r => percent(r.error_rate) },
      { key: "rps", label: "Per second", value: r => r.rps, text: r => rate(r.rps) },
      { key: "mean_ns", label: "Avg", value: r => r.mean_ns, text: r => duration(r.mean_ns) },
      { key: "p50_ns", label: "P50", value: r => r.p50_ns, text: r => duration(r.p50_ns) },
      { key: "p95_ns", label: "P95", value: r => r.p95_ns, text: r => duration(r.p95_ns) },
      { key: "p99_ns", label: "P99", value: r => r.p99_ns, text: r => duration(r.p99_ns) },
      { key: "max_ns", label: "Max", value: r => r.max_ns, text: r => duration(r.max_ns) },
    ];
  }

  // ---------- panels ----------
  function panel(name, render) {
    panels.push({ name, render });
  }

  panel("overview", d => {
    const r = d.request_stats;
    set("card-rps", rate(r.rps), r.rps);
    set("card-total", count(d.requests.total), d.requests.total);
    set("card-avg", duration(r.mean_ns), r.mean_ns);
    set("card-max", duration(r.max_ns), r.max_ns);
    set("card-error-rate", percent(d.requests.error_rate), d.requests.error_rate);
    set("card-errors", count(d.requests.errors), d.requests.errors);
    set("card-p50", duration(d.requests.latency.p50), d.requests.latency.p50);
    set("card-p95", duration(d.requests.latency.p95), d.requests.latency.p95);
    set("card-p99", duration(d.requests.latency.p99), d.requests.latency.p99);
    set("card-p999", duration(r.p999_ns), r.p999_ns);
  });

  panel("charts", d => {
    const s = d.series || [];
    const step = (d.window.step_secs || 10) * 1e9;
    lineChart(document.getElementById("chart-latency"), s,
      [{ key: "p50_ns", color: "--s1" }, { key: "p95_ns", color: "--s2" }, { key: "p99_ns", color: "--s3" }], duration, step);
    lineChart(document.getElementById("chart-throughput"), s,
      [{ key: "rps", color: "--s1" }, { key: "events_per_sec", color: "--s2" }], rate, step);
    lineChart(document.getElementById("chart-errors"), s, [{ key: "error_rate", color: "--s3" }], percent, step);
    barChart(document.getElementById("chart-histogram"), d.histogram || []);
  });

  // Routes: slowest first (p95), as an on-call engineer reads them; the
  // bytes summed over the window.
  const routes = sortTable(document.getElementById("routes-table"), latencyColumns("Route").concat([
    { key: "bytes_in", label: "Bytes in", value: r => r.bytes_in || 0, text: r => bytes(r.bytes_in) },
    { key: "bytes_out", label: "Bytes out", value: r => r.bytes_out || 0, text: r => bytes(r.bytes_out) },
  ]), "p95_ns", r => r.name);
  const functions = sortTable(document.getElementById("functions-table"), latencyColumns("Function"), "count", r => r.name);
  const queries = sortTable(document.getElementById("queries-table"), latencyColumns("Query"), "count", r => r.name);
  panel("routes", d => routes(d.route_stats || []));
  panel("functions", d => functions(d.functions || []));
  panel("queries", d => queries(d.queries || []));

  const num = v => (v == null || !isFinite(v) ? "–" : Math.abs(v) >= 1000 ? count(v) : String(+v.toPrecision(4)));
  const custom = sortTable(document.getElementById("custom-table"), [
    { key: "name", label: "Metric", value: c => c.name, text: c => c.name },
    { key: "count", label: "Samples", value: c => c.count, text: c => count(c.count) },
    { key: "last", label: "Last", value: c => c.last, text: c => num(c.last) },
    { key: "avg", label: "Avg", value: c => c.avg, text: c => num(c.avg) },
    { key: "min", label: "Min", value: c => c.min, text: c => num(c.min) },
    { key: "max", label: "Max", value: c => c.max, text: c => num(c.max) },
  ], "count", c => c.name);
  panel("custom", d => custom(d.custom || []));

  // Errors by exception type over the window; "(none)": errors without one.
  const exceptions = sortTable(document.getElementById("exceptions-table"), [
    { key: "exception", label: "Exception", value: t => t.exception, text: t => t.exception, left: true },
    { key: "count", label: "Errors", value: t => t.count, text: t => count(t.count), cls: () => "bad" },
    { key: "share", label: "Share", value: t => t.share, text: t => percent(t.share) },
    { key: "names", label: "Routes / functions / queries", value: t => t.names.length, left: true,
      text: t => t.names.map(n => n.name + " (" + count(n.count) + ")").join(", ") },
    { key: "first_seen_ns", label: "First seen", value: t => t.first_seen_ns, text: t => clock(t.first_seen_ns, true) },
    { key: "last_seen_ns", label: "Last seen", value: t => t.last_seen_ns, text: t => clock(t.last_seen_ns, true) },
  ], "count", t => t.exception);
  panel("exceptions", d => {
    const x = d.exceptions || { errors: 0, types: [] };
    exceptions(x.types);
    set("exceptions-total", x.errors ? count(x.errors) + " errors in the window" : "", x.errors);
  });

  const errors = sortTable(document.getElementById("errors-table"), [
    { key: "ts_ns", label: "Time", value: e => e.ts_ns, text: e => clock(e.ts_ns, true) },
    { key: "route", label: "Route", value: e => e.route, text: e => e.route, left: true },
    { key: "status", label: "Status", value: e => e.status, text: e => (e.status ? String(e.status) : "–") },
    { key: "exception_type", label: "Exception", value: e => e.exception_type, text: e => e.exception_type || "–", left: true },
    { key: "exception_value", label: "Message", value: e => e.exception_value, text: e => e.exception_value || "–", left: true },
  ], "ts_ns", null, { id: e => e.ts_ns + " " + e.route, text: e => e.stack || "" });
  panel("errors", d => errors(d.errors || []));

  panel("rings", d => {
    const box = document.getElementById("rings");
    const frag = document.createDocumentFragment();
    if (!(d.rings || []).length) frag.appendChild(el("p", { class: "muted" }, "no ring attached yet"));
    for (const r of d.rings || []) {
      const div = el("div", { class: "ring", "data-ring": r.ring_id });
      const title = el("div", { class: "title" });
      title.appendChild(el("span", { class: "path" }, r.path));
      title.appendChild(el("span", { class: "muted" }, r.ring_id + " · " + r.policy));
      const state = r.truncated ? "truncated" : r.attached ? "attached" : "detached";
      title.appendChild(el("span", { class: "badge", "data-state": r.truncated ? "error" : r.attached ? "live" : "stale" }, state));
      div.appendChild(title);
      // The fullest lane: its writer loses events when it is full.
      const ratio = r.depth_ratio || 0;
      const meter = el("div", { class: "meter" + (ratio >= 0.9 ? " full" : ""), title: "fullest lane" });
      const fill = el("div");
      fill.style.width = Math.min(100, ratio * 100).toFixed(1) + "%";
      meter.appendChild(fill);
      div.appendChild(meter);
      const c = r.counters;
      const counters = el("div", { class: "counters" });
      const item = (label, value, bad) => {
        const s = el("span", bad ? { class: "bad" } : null, label + " ");
        s.appendChild(el("b", { "data-key": label }, count(value)));
        counters.appendChild(s);
      };
      item("depth", r.lag);
      item("capacity", r.capacity);
      item("lanes held", r.lanes_held);
      item("claimed", c.claimed);
      item("received", c.received);
      item("dropped", c.dropped, c.dropped > 0);
      item("abandoned", c.abandoned, c.abandoned > 0);
      item("torn", c.torn, c.torn > 0);
      item("lost last minute", r.lost_last_minute, r.lost_last_minute > 0);
      div.appendChild(counters);
      const writers = el("div", { class: "writers" });
      writers.appendChild(el("span", { class: "muted" }, "writers: "));
      if (!r.writers.length) writers.appendChild(el("span", { class: "muted" }, "none registered"));
      r.writers.forEach((w, i) => {
        if (i) writers.appendChild(document.createTextNode(", "));
        const label = "pid " + w.pid + (w.service ? " (" + w.service + ")" : "");
        const state = w.alive ? " alive" : " dead, last seen " + (w.last_seen_ns ? clock(w.last_seen_ns, true) : "never");
        writers.appendChild(el("span", { class: w.alive ? "alive" : "dead", "data-pid": w.pid, "data-alive": String(w.alive) },
          label + state + (w.dropped ? ", dropped " + count(w.dropped) : "")));
      });
      div.appendChild(writers);
      frag.appendChild(div);
    }
    box.replaceChildren(frag);
  });

  // ---------- losses per producer ----------
  const lossTable = sortTable(document.getElementById("losses-table"), [
    { key: "who", label: "Producer", value: p => (p.pid == null ? "unknown" : "pid " + p.pid),
      text: p => (p.pid == null ? "unknown (not attributable)" : "pid " + p.pid) + (p.service ? " (" + p.service + ")" : "") },
    { key: "state", label: "State", value: p => (p.alive == null ? "–" : p.alive ? "alive" : "dead"),
      text: p => (p.alive == null ? "–" : p.alive ? "alive" : "dead"), cls: p => (p.alive === false ? "bad" : "") },
    { key: "ring", label: "Ring", value: p => p.ring, text: p => p.ring, left: true },
    { key: "ring_full", label: "Ring full", value: p => p.ring_full, text: p => count(p.ring_full), cls: p => (p.ring_full ? "bad" : "") },
    { key: "overwritten", label: "Overwritten", value: p => p.overwritten, text: p => count(p.overwritten), cls: p => (p.overwritten ? "bad" : "") },
    { key: "abandoned", label: "Abandoned", value: p => p.abandoned, text: p => count(p.abandoned), cls: p => (p.abandoned ? "bad" : "") },
    { key: "torn", label: "Torn", value: p => p.torn, text: p => count(p.torn), cls: p => (p.torn ? "bad" : "") },
    { key: "total", label: "Total", value: p => p.total, text: p => count(p.total) },
    { key: "last_loss_ns", label: "Last loss", value: p => p.last_loss_ns, text: p => clock(p.last_loss_ns, true) },
  ], "last_loss_ns", p => p.ring_id + "/" + (p.pid == null ? "unknown" : p.pid));
  panel("losses", d => {
    const rows = d.producer_losses || [];
    lossTable(rows);
    const total = rows.reduce((n, p) => n + p.total, 0);
    set("losses-total", rows.length ? count(total) + " events lost since the reader started" : "no loss", total);
    // One point per step over the window, zeros where nothing was lost.
    const step = (d.window.step_secs || 10) * 1e9;
    const end = Math.floor(d.generated_ns / step) * step;
    const start = Math.max(end - d.window.covered_secs * 1e9, end - 90 * step);
    const byTs = new Map((d.loss_series || []).map(p => [p.ts_ns, p]));
    const points = [];
    for (let t = Math.floor(start / step) * step; t <= end; t += step) {
      const p = byTs.get(t) || {};
      points.push({ ts_ns: t, dropped: (p.ring_full || 0) + (p.overwritten || 0), abandoned: p.abandoned || 0, torn: p.torn || 0 });
    }
    lineChart(document.getElementById("chart-losses"), rows.length ? points : [],
      [{ key: "dropped", color: "--s2" }, { key: "abandoned", color: "--s3" }, { key: "torn", color: "--s1" }], count, step);
  });

  // ---------- post-mortem of dead writers ----------
  const postmortem = { selected: null, loaded: null, events: null };
  const pmKey = p => p.ring_id + "/" + p.pid;
  const pmEvents = sortTable(document.getElementById("postmortem-events"), [
    { key: "ts_ns", label: "Time", value: e => e.ts_ns, text: e => clock(e.ts_ns, true) },
    { key: "kind", label: "Kind", value: e => e.kind, text: e => e.kind },
    { key: "name", label: "Route / function / query", value: e => e.name, text: e => e.name, left: true },
    { key: "status", label: "Status", value: e => e.status || 0, text: e => (e.status != null ? String(e.status) : "–"), cls: e => (e.error ? "bad" : "") },
    { key: "dur_ns", label: "Duration", value: e => e.dur_ns || 0, text: e => (e.dur_ns != null ? duration(e.dur_ns) : "–") },
    { key: "trace_id", label: "Trace id", value: e => e.trace_id || "", text: e => e.trace_id || "–", left: true },
    { key: "seq", label: "Seq", value: e => e.seq, text: e => String(e.seq) },
  ], "seq", e => String(e.seq));
  async function loadPostmortem(p) {
    const key = pmKey(p);
    if (postmortem.loaded === key) return;
    postmortem.loaded = key;
    try {
      const res = await fetch("postmortem/" + encodeURIComponent(p.ring_id) + "/" + p.pid + ".json",
        { cache: "no-store", credentials: "same-origin" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const doc = await res.json();
      if (postmortem.selected !== key) return;
      pmEvents(doc.events || []);
      document.getElementById("postmortem-detail").dataset.key = key;
      set("postmortem-title", "Last " + count(doc.events.length) + " events of pid " + doc.pid +
        (doc.service ? " (" + doc.service + ")" : "") + ", last seen " + clock(doc.last_seen_ns, true));
    } catch (e) {
      postmortem.loaded = null;
      set("postmortem-title", "could not load the post-mortem: " + e.message);
    }
  }
  panel("postmortem", d => {
    const list = d.postmortems || [];
    const box = document.getElementById("postmortem-list");
    const detail = document.getElementById("postmortem-detail");
    if (!list.length) {
      box.replaceChildren(el("p", { class: "muted" }, "no writer process has died since the reader started"));
      detail.hidden = true;
      return;
    }
    if (!list.some(p => pmKey(p) === postmortem.selected)) postmortem.selected = pmKey(list[0]);
    const table = el("table", { class: "data" });
    const head = el("tr");
    for (const h of ["Writer", "Ring", "Last seen", "Found dead", "Events drained", "Lost", "Events"]) {
      head.appendChild(el("th", h === "Ring" ? { class: "left" } : null, h));
    }
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    for (const p of list) {
      const key = pmKey(p);
      const tr = el("tr", { "data-key": key, class: key === postmortem.selected ? "selected" : null });
      tr.appendChild(el("td", null, "pid " + p.pid + (p.service ? " (" + p.service + ")" : "")));
      tr.appendChild(el("td", { class: "left" }, p.ring));
      tr.appendChild(el("td", null, clock(p.last_seen_ns, true)));
      tr.appendChild(el("td", null, clock(p.detected_ns, true)));
      tr.appendChild(el("td", null, count(p.events_drained)));
      const lost = p.losses.dropped + p.losses.abandoned + p.losses.torn;
      tr.appendChild(el("td", { class: lost ? "bad" : null }, lost ? count(p.losses.dropped) + " dropped, " +
        count(p.losses.abandoned) + " abandoned, " + count(p.losses.torn) + " torn" : "none"));
      const links = el("td");
      const show = el("button", { type: "button", "data-action": "show" }, "Show " + count(p.events_kept));
      show.addEventListener("click", () => { postmortem.selected = key; renderAllLast(); });
      const link = el("a", { href: "postmortem/" + encodeURIComponent(p.ring_id) + "/" + p.pid + ".jsonl",
        download: "profilis-postmortem-" + p.ring_id + "-" + p.pid + ".jsonl", class: "download" }, "JSONL");
      links.append(show, " ", link);
      tr.appendChild(links);
      body.appendChild(tr);
    }
    table.appendChild(body);
    box.replaceChildren(table);
    detail.hidden = false;
    const chosen = list.find(p => pmKey(p) === postmortem.selected);
    loadPostmortem(chosen);
  });

  // ---------- merged worker views ----------
  const expanded = new Set();
  panel("services", d => {
    const box = document.getElementById("services");
    const services = d.services || [];
    const frag = document.createDocumentFragment();
    if (!services.length) frag.appendChild(el("p", { class: "muted" }, "nothing in the window yet"));
    for (const s of services) {
      const name = s.service == null ? "(no service name)" : s.service;
      const div = el("div", { class: "service", "data-service": name });
      const title = el("div", { class: "title" });
      title.appendChild(el("span", { class: "path" }, name));
      title.appendChild(el("span", { class: "muted" }, s.workers.length + " worker" + (s.workers.length === 1 ? "" : "s") + ": " +
        s.workers.map(w => (w.pid ? "pid " + w.pid : "other workers") + " (" + count(w.events) + ")").join(", ")));
      div.appendChild(title);
      const table = el("table", { class: "data" });
      const head = el("tr");
      for (const h of ["Name", "Kind", "Count", "Errors", "Per second", "P50", "P95", "P99", "Max", "Workers"]) head.appendChild(el("th", null, h));
      table.appendChild(el("thead")).appendChild(head);
      const body = el("tbody");
      const kinds = [["REQ", s.routes], ["FN", s.functions], ["DB", s.queries]];
      for (const [kind, rows] of kinds) {
        for (const r of rows) {
          const key = name + "\u0000" + kind + "\u0000" + r.name;
          const open = expanded.has(key);
          const tr = el("tr", { class: "merged", "data-name": r.name, "data-kind": kind, "aria-expanded": String(open) });
          tr.appendChild(el("td", null, (open ? "▾ " : "▸ ") + r.name));
          tr.appendChild(el("td", null, kind));
          tr.appendChild(el("td", { "data-key": "count", "data-value": String(r.count) }, count(r.count)));
          tr.appendChild(el("td", { class: r.errors ? "bad" : null }, count(r.errors)));
          tr.appendChild(el("td", null, rate(r.rps)));
          tr.appendChild(el("td", null, duration(r.p50_ns)));
          tr.appendChild(el("td", null, duration(r.p95_ns)));
          tr.appendChild(el("td", { "data-key": "p99", "data-value": String(r.p99_ns) }, duration(r.p99_ns)));
          tr.appendChild(el("td", null, duration(r.max_ns)));
          tr.appendChild(el("td", null, String(r.workers.length)));
          tr.addEventListener("click", () => {
            if (expanded.has(key)) expanded.delete(key); else expanded.add(key);
            renderAllLast();
          });
          body.appendChild(tr);
          if (!open) continue;
          for (const w of r.workers) {
            const wr = el("tr", { class: "worker", "data-pid": String(w.pid) });
            wr.appendChild(el("td", null, w.pid ? "pid " + w.pid : "other workers"));
            wr.appendChild(el("td", null, ""));
            wr.appendChild(el("td", { "data-key": "count", "data-value": String(w.count) }, count(w.count)));
            wr.appendChild(el("td", { class: w.errors ? "bad" : null }, count(w.errors)));
            wr.appendChild(el("td", null, rate(w.rps)));
            wr.appendChild(el("td", null, duration(w.p50_ns)));
            wr.appendChild(el("td", null, duration(w.p95_ns)));
            wr.appendChild(el("td", { "data-key": "p99", "data-value": String(w.p99_ns) }, duration(w.p99_ns)));
            wr.appendChild(el("td", null, duration(w.max_ns)));
            wr.appendChild(el("td", null, ""));
            body.appendChild(wr);
          }
        }
      }
      table.appendChild(body);
      const scroll = el("div", { class: "scroll" });
      scroll.appendChild(table);
      div.appendChild(scroll);
      frag.appendChild(div);
    }
    box.replaceChildren(frag);
  });

  panel("footer", d => {
    const m = d.reader;
    set("footer", "reader pid " + m.pid + " · up " + Math.round(m.uptime_secs) + " s · " +
      rate(m.events_per_sec) + " events/s drained · CPU " + m.cpu_percent.toFixed(1) + "% · window " +
      Math.round(d.window.covered_secs) + " of " + d.window.window_secs + " s");
  });

  panel("health", d => {
    const box = document.getElementById("health");
    const reasons = (d.health && d.health.reasons) || [];
    box.hidden = !reasons.length;
    box.textContent = reasons.length ? "Degraded: " + reasons.join("; ") : "";
  });

  // ---------- refresh loop ----------
  function status(state, text) {
    const s = document.getElementById("status");
    s.dataset.state = state;
    s.textContent = text;
  }

  function renderAll(data) {
    last = data;
    for (const p of panels) {
      try { p.render(data); } catch (e) { console.error("panel " + p.name, e); }
    }
    // Set last: tests read the rendered snapshot's time from here.
    document.getElementById("dashboard").dataset.generatedNs = String(data.generated_ns);
    set("updated", data.generated_ns ? "updated " + clock(data.generated_ns) : "waiting for the first snapshot");
  }

  async function refresh() {
    try {
      const res = await fetch("metrics.json", { cache: "no-store", credentials: "same-origin" });
      if (res.status === 401) {
        status("error", "signed out");
        location.reload();
        return;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      const data = await res.json();
      renderAll(data);
      const degraded = data.health && data.health.status !== "ok";
      status(degraded ? "degraded" : "live", degraded ? "degraded" : "live");
    } catch (e) {
      status("error", "cannot reach the reader");
    }
  }

  function renderAllLast() {
    if (last) renderAll(last);
  }

  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    if (last) renderAll(last);
  }

  function start() {
    const saved = localStorage.getItem("profilis-theme");
    if (saved === "dark" || saved === "light") document.documentElement.dataset.theme = saved;
    document.getElementById("theme-toggle").addEventListener("click", () => {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      localStorage.setItem("profilis-theme", next);
      applyTheme(next);
    });
    if (document.body.dataset.view !== "dashboard") return;
    const every = Math.max(100, Number(document.body.dataset.refreshMs) || 2000);
    let timer = null;
    const loop = async () => {
      await refresh();
      timer = setTimeout(loop, every);
    };
    loop();
    let resize = null;
    window.addEventListener("resize", () => {
      clearTimeout(resize);
      resize = setTimeout(() => last && renderAll(last), 150);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer) { clearTimeout(timer); loop(); }
    });
  }

  document.addEventListener("DOMContentLoaded", start);
  return { panel, fmt, refresh, last: () => last };
})();
