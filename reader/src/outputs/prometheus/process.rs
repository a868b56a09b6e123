//! CPU and memory of the writer processes (`profilis_writer_process_*`,
//! by service and pid) and the standard `process_*` metrics of the reader
//! itself. A figure `/proc` did not give (PSS of another user's process,
//! the reader's fd limit when unlimited) has no sample.

use super::text::Out;
use crate::views::{ProcessResources, ProcessesSnapshot};

/// Renders the processes section.
pub(super) fn render(out: &mut Out, p: &ProcessesSnapshot) {
    writers(out, p);
    own(out, p);
}

fn writers(out: &mut Out, p: &ProcessesSnapshot) {
    type Field = fn(&ProcessResources) -> Option<f64>;
    let families: [(&str, &str, &str, Field); 3] = [
        (
            "profilis_writer_process_cpu_seconds_total",
            "counter",
            "CPU time (user + system) used by a writer process since it started, seconds, as of its latest sample.",
            |w| Some(w.cpu_seconds),
        ),
        (
            "profilis_writer_process_resident_memory_bytes",
            "gauge",
            "Resident memory (RSS) of a writer process, bytes, as of its latest sample.",
            |w| Some(w.rss_bytes as f64),
        ),
        (
            "profilis_writer_process_pss_bytes",
            "gauge",
            "Proportional set size of a writer process (shared pages split between their sharers), bytes; absent when /proc/PID/smaps_rollup is not readable.",
            |w| w.pss_bytes.map(|b| b as f64),
        ),
    ];
    for (name, kind, help, field) in families {
        out.family(name, kind, help);
        for s in &p.services {
            let service = s.service.as_deref().unwrap_or("");
            for w in &s.workers {
                if let Some(v) = field(w) {
                    let pid = w.pid.to_string();
                    out.sample(name, &[("service", service), ("pid", &pid)], v);
                }
            }
        }
    }
}

fn own(out: &mut Out, p: &ProcessesSnapshot) {
    let Some(r) = &p.reader else {
        return;
    };
    let families: [(&str, &str, &str, Option<f64>); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            Some(r.process.cpu_seconds),
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            Some(r.process.rss_bytes as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            Some(r.process.virtual_bytes as f64),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            Some(r.start_time_seconds),
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            r.open_fds.map(|n| n as f64),
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            r.max_fds.map(|n| n as f64),
        ),
    ];
    for (name, kind, help, value) in families {
        if let Some(v) = value {
            out.family(name, kind, help);
            out.sample(name, &[], v);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::render as render_all;
    use crate::views::*;

    /// Two writers of a service with a quote in its name, one whose PSS
    /// is not readable, one without a service; and the reader.
    pub fn sample() -> ProcessesSnapshot {
        let worker = |pid: u32, pss: Option<u64>, service: Option<&str>| ProcessResources {
            pid,
            start_time: 100 + u64::from(pid),
            service: service.map(str::to_string),
            rings: vec!["/dev/shm/a.ring".into()],
            sampled_ns: 1_800_000_000_000_000_000,
            cpu_seconds: 12.5,
            cpu_percent: Some(40.0),
            rss_bytes: 50 << 20,
            pss_bytes: pss,
            virtual_bytes: 400 << 20,
            threads: 4,
        };
        ProcessesSnapshot {
            interval_secs: 1.0,
            max_per_tick: 256,
            writers: 3,
            not_sampled: 0,
            services: vec![
                ServiceResources {
                    service: None,
                    processes: 1,
                    workers: vec![worker(9, Some(1 << 20), None)],
                    ..ServiceResources::default()
                },
                ServiceResources {
                    service: Some("sh\"op".into()),
                    processes: 2,
                    workers: vec![
                        worker(42, Some(30 << 20), Some("sh\"op")),
                        worker(43, None, Some("sh\"op")),
                    ],
                    ..ServiceResources::default()
                },
            ],
            reader: Some(ReaderProcess {
                process: ProcessResources {
                    pid: 7,
                    cpu_seconds: 3.25,
                    rss_bytes: 20 << 20,
                    virtual_bytes: 900 << 20,
                    ..ProcessResources::default()
                },
                start_time_seconds: 1_799_999_000.5,
                open_fds: Some(17),
                max_fds: None,
            }),
        }
    }

    fn lines(snapshot: &Snapshot, prefix: &str) -> Vec<String> {
        render_all(snapshot)
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn writer_processes_by_service_and_pid_with_pss_absent_when_unreadable() {
        let snapshot = Snapshot {
            processes: sample(),
            ..Snapshot::default()
        };
        assert_eq!(
            lines(&snapshot, "profilis_writer_process_cpu_seconds_total"),
            [
                "profilis_writer_process_cpu_seconds_total{service=\"\",pid=\"9\"} 12.5",
                "profilis_writer_process_cpu_seconds_total{service=\"sh\\\"op\",pid=\"42\"} 12.5",
                "profilis_writer_process_cpu_seconds_total{service=\"sh\\\"op\",pid=\"43\"} 12.5",
            ]
        );
        assert_eq!(
            lines(&snapshot, "profilis_writer_process_resident_memory_bytes{").len(),
            3
        );
        assert_eq!(
            lines(&snapshot, "profilis_writer_process_pss_bytes{"),
            [
                "profilis_writer_process_pss_bytes{service=\"\",pid=\"9\"} 1048576",
                "profilis_writer_process_pss_bytes{service=\"sh\\\"op\",pid=\"42\"} 31457280",
            ],
            "no sample for pid 43, whose PSS is unreadable"
        );
        let text = render_all(&snapshot);
        assert!(text.contains("# TYPE profilis_writer_process_cpu_seconds_total counter\n"));
        assert!(text.contains("# TYPE profilis_writer_process_pss_bytes gauge\n"));
    }

    #[test]
    fn the_reader_exports_the_standard_process_metrics() {
        let snapshot = Snapshot {
            processes: sample(),
            ..Snapshot::default()
        };
        let text = render_all(&snapshot);
        for line in [
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.25\n",
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 20971520\n",
            "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes 943718400\n",
            "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1799999000.5\n",
            "# TYPE process_open_fds gauge\nprocess_open_fds 17\n",
        ] {
            assert!(text.contains(line), "missing {line:?}");
        }
        assert!(!text.contains("process_max_fds"), "unlimited: no sample");
        // Without a sample of the reader (no /proc), no process_* family.
        let bare = render_all(&Snapshot::default());
        assert!(!bare.contains("\nprocess_"));
        assert!(bare.contains("# TYPE profilis_writer_process_cpu_seconds_total counter"));
    }
}
