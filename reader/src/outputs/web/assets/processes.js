// Profilis dashboard, processes panel: CPU and memory of the writer
// processes per service (the sum, then one row per process), the last
// sample of writers that died (from their post-mortems), and the reader's
// own process. Registered with Profilis.panel like the panels of app.js;
// text from the data only ever goes through textContent.
"use strict";

(() => {
  const { count } = Profilis.fmt;

  function bytes(n) {
    if (n == null || !isFinite(n)) return "–";
    if (n < 1024) return n + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toPrecision(3) + " " + units[i];
  }
  function cpu(p) {
    if (p == null || !isFinite(p)) return "–";
    return p.toFixed(p >= 100 ? 0 : 1) + "%";
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) if (attrs[k] != null) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  /** A cell with its raw value for tests and sorting. */
  function cell(key, value, text) {
    return el("td", { "data-key": key, "data-value": value == null ? "" : String(value) }, text);
  }
  function figures(tr, p, cpuPercent) {
    tr.appendChild(cell("cpu", cpuPercent, cpu(cpuPercent)));
    tr.appendChild(cell("rss", p.rss_bytes, bytes(p.rss_bytes)));
    tr.appendChild(cell("pss", p.pss_bytes, bytes(p.pss_bytes)));
  }
  const serviceName = s => (s == null ? "(no service name)" : s);

  Profilis.panel("processes", d => {
    const p = d.processes || { services: [] };
    const table = document.getElementById("processes-table");
    const head = el("tr");
    for (const h of ["Service / process", "Processes", "CPU (% of a core)", "RSS", "PSS", "CPU time", "Threads"]) {
      head.appendChild(el("th", null, h));
    }
    const body = el("tbody");
    for (const s of p.services) {
      const name = serviceName(s.service);
      const tr = el("tr", { class: "merged", "data-service": name });
      tr.appendChild(el("td", null, name));
      tr.appendChild(cell("processes", s.processes, count(s.processes)));
      figures(tr, s, s.cpu_percent);
      tr.appendChild(el("td", null, ""));
      tr.appendChild(el("td", null, ""));
      body.appendChild(tr);
      for (const w of s.workers) {
        const wr = el("tr", { class: "worker", "data-service": name, "data-pid": String(w.pid) });
        wr.appendChild(el("td", { title: w.rings.join(", ") }, "pid " + w.pid));
        wr.appendChild(el("td", null, ""));
        figures(wr, w, w.cpu_percent);
        wr.appendChild(cell("cpu_seconds", w.cpu_seconds, w.cpu_seconds.toFixed(1) + " s"));
        wr.appendChild(cell("threads", w.threads, count(w.threads)));
        body.appendChild(wr);
      }
    }
    const dead = (d.postmortems || []).filter(pm => pm.process);
    for (const pm of dead) {
      const w = pm.process;
      const tr = el("tr", { class: "dead", "data-service": serviceName(pm.service), "data-dead-pid": String(pm.pid) });
      tr.appendChild(el("td", null, "pid " + pm.pid + " (" + serviceName(pm.service) + ", dead: last sample)"));
      tr.appendChild(el("td", null, ""));
      figures(tr, w, w.cpu_percent);
      tr.appendChild(cell("cpu_seconds", w.cpu_seconds, w.cpu_seconds.toFixed(1) + " s"));
      tr.appendChild(cell("threads", w.threads, count(w.threads)));
      body.appendChild(tr);
    }
    if (!body.children.length) {
      const tr = el("tr");
      tr.appendChild(el("td", { colspan: "7", class: "muted" },
        p.interval_secs ? "no writer process sampled yet" : "process sampling is off (--process-interval 0)"));
      body.appendChild(tr);
    }
    const thead = el("thead");
    thead.appendChild(head);
    table.replaceChildren(thead, body);

    const note = document.getElementById("processes-note");
    const waiting = p.not_sampled ? " · " + count(p.not_sampled) + " waiting for their turn (at most " + count(p.max_per_tick) + " read per sample)" : "";
    note.textContent = p.interval_secs
      ? count(p.writers) + " live writer process" + (p.writers === 1 ? "" : "es") + ", sampled every " + p.interval_secs + " s" + waiting
      : "";
    const r = p.reader;
    const own = document.getElementById("processes-reader");
    own.dataset.pid = r ? String(r.pid) : "";
    own.dataset.rss = r ? String(r.rss_bytes) : "";
    own.textContent = r
      ? "Reader (pid " + r.pid + "): CPU " + cpu(r.cpu_percent) + " · RSS " + bytes(r.rss_bytes) +
        " · PSS " + bytes(r.pss_bytes) + " · " + count(r.open_fds) + " open files of " +
        (r.max_fds == null ? "unlimited" : count(r.max_fds))
      : "";
  });
})();
