//! CPU and memory of the writer processes: every `--process-interval` the
//! reader reads `/proc/PID/stat` and `statm` of each live process in the
//! writer tables of the attached rings (two small reads each, never per
//! event), and of itself at every snapshot; `smaps_rollup` (PSS) as its
//! budget allows (see `PssBudget`).
//!
//! A process is known by its pid and start time, as in the writer table: a
//! pid whose `/proc` entry has another start time is a new process that
//! took a dead writer's pid, and is not sampled as that writer. A writer
//! found gone keeps its last sample among the recently departed, for its
//! post-mortem.
//!
//! Cost is bounded: at most [`MAX_SAMPLED_PER_TICK`] processes are read
//! per tick; with more live writers they are read in turn, so each is read
//! every `ceil(writers / MAX_SAMPLED_PER_TICK)` ticks, and `not_sampled`
//! in the snapshot says how many waited at the last tick.

use crate::support::cpu::clock_ticks_per_sec;
use crate::support::procfs::{self, Reading};
use crate::views::{ProcessResources, ProcessesSnapshot, ReaderProcess, ServiceResources};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

/// Most writer processes read per sampling tick.
pub const MAX_SAMPLED_PER_TICK: usize = 256;
/// Shortest `--process-interval` (a few samples a second at most).
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Departed processes whose last sample is kept for their post-mortems.
const DEPARTED_KEPT: usize = 256;
/// `smaps_rollup` reads take at most one part in this many of the time
/// that passes (1% of a core).
const PSS_SHARE: u32 = 100;
/// Most of the budget saved up while no read was due: what reads may take
/// at once, beyond the one that overdraws it.
const PSS_BURST: Duration = Duration::from_millis(10);

/// Time for `smaps_rollup` reads. The kernel walks a process's page tables
/// to sum its PSS (6-10 ms per GB resident on the development VM, 1,000
/// times a `statm` read), on the drain loop's thread: read for every writer
/// every second, a few large processes would take several percent of a
/// core and hold the drain loop up for tens of milliseconds. Reads earn
/// [`PSS_SHARE`]-th of the time that passes, saved up to [`PSS_BURST`]; a
/// read may overdraw the budget, and none starts until it is paid back.
/// Between reads a process keeps the PSS of its last one.
struct PssBudget {
    /// Nanoseconds left (negative: owed).
    left_ns: i64,
    earned_to: Instant,
}

impl PssBudget {
    fn new(now: Instant) -> PssBudget {
        PssBudget {
            left_ns: PSS_BURST.as_nanos() as i64,
            earned_to: now,
        }
    }

    /// Whether a read may start at `now`.
    fn allows(&mut self, now: Instant) -> bool {
        if now > self.earned_to {
            let earned = (now - self.earned_to).as_nanos() / u128::from(PSS_SHARE);
            let earned = i64::try_from(earned).unwrap_or(i64::MAX);
            let cap = PSS_BURST.as_nanos() as i64;
            self.left_ns = self.left_ns.saturating_add(earned).min(cap);
            self.earned_to = now;
        }
        self.left_ns > 0
    }

    fn spend(&mut self, took: Duration) {
        self.left_ns = self.left_ns.saturating_sub(took.as_nanos() as i64);
    }

    /// Reads the PSS of the process at `dir` if the budget allows:
    /// `Some(its PSS)` when read (`Some(None)`: not readable).
    fn read(&mut self, dir: &Path, now: Instant) -> Option<Option<u64>> {
        if !self.allows(now) {
            return None;
        }
        let start = Instant::now();
        let pss = procfs::read_pss(dir);
        self.spend(start.elapsed());
        Some(pss)
    }
}

/// A process: pid and start time.
type Key = (u32, u64);

/// A live writer process as the writer tables name it.
pub struct LiveWriter<'a> {
    /// Process id.
    pub pid: u32,
    /// Start time (ticks after boot).
    pub start_time: u64,
    /// Service, if set.
    pub service: Option<&'a str>,
    /// The ring file it writes into.
    pub ring: &'a Path,
}

struct Tracked {
    service: Option<String>,
    rings: Vec<String>,
    /// When it was last read, and its CPU ticks then.
    previous: Option<(Instant, u64)>,
    /// When its PSS was last read (`None`: never), and what it read.
    pss_read: Option<(Instant, Option<u64>)>,
    sample: Option<ProcessResources>,
}

/// Samples the writer processes and the reader.
pub struct ProcessSampler {
    interval: Duration,
    max_per_tick: usize,
    next_at: Instant,
    /// Round-robin position among the live writers, by key order.
    cursor: usize,
    tracked: BTreeMap<Key, Tracked>,
    departed: VecDeque<(Key, ProcessResources)>,
    writers: u64,
    not_sampled: u64,
    own: Option<(Instant, u64)>,
    /// The reader's own PSS as last read.
    own_pss: Option<u64>,
    pss: PssBudget,
    ticks_per_sec: f64,
    boot_secs: Option<u64>,
}

impl ProcessSampler {
    /// Samples every `interval` (zero: writers are not sampled, the reader
    /// still is), at most `max_per_tick` writers per tick.
    pub fn new(interval: Duration, max_per_tick: usize, now: Instant) -> ProcessSampler {
        ProcessSampler {
            interval,
            max_per_tick: max_per_tick.max(1),
            next_at: now,
            cursor: 0,
            tracked: BTreeMap::new(),
            departed: VecDeque::new(),
            writers: 0,
            not_sampled: 0,
            // The reader's CPU at its first snapshot: since the sampler was
            // made.
            own: procfs::read(Path::new("/proc/self")).map(|r| (now, r.stat.utime + r.stat.stime)),
            own_pss: None,
            pss: PssBudget::new(now),
            ticks_per_sec: clock_ticks_per_sec(),
            boot_secs: procfs::boot_time_secs(),
        }
    }

    /// Whether a tick is due; counts it as done.
    pub fn due(&mut self, now: Instant) -> bool {
        if self.interval.is_zero() || now < self.next_at {
            return false;
        }
        self.next_at = now + self.interval;
        true
    }

    /// One tick: takes the live writers (one entry per process and ring)
    /// and reads up to the cap of them from `/proc`.
    pub fn tick<'a>(
        &mut self,
        live: impl IntoIterator<Item = LiveWriter<'a>>,
        now: Instant,
        now_ns: u64,
    ) {
        self.tick_in(Path::new("/proc"), live, now, now_ns);
    }

    fn tick_in<'a>(
        &mut self,
        proc_dir: &Path,
        live: impl IntoIterator<Item = LiveWriter<'a>>,
        now: Instant,
        now_ns: u64,
    ) {
        let mut current: HashMap<Key, (Option<&str>, Vec<String>)> = HashMap::new();
        for w in live {
            let entry = current
                .entry((w.pid, w.start_time))
                .or_insert_with(|| (w.service, Vec::new()));
            let ring = w.ring.display().to_string();
            if !entry.1.contains(&ring) {
                entry.1.push(ring);
            }
        }
        let gone: Vec<Key> = self
            .tracked
            .keys()
            .filter(|k| !current.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            self.depart(key);
        }
        for (key, (service, mut rings)) in current {
            rings.sort();
            let t = self.tracked.entry(key).or_insert_with(|| Tracked {
                service: None,
                rings: Vec::new(),
                previous: None,
                pss_read: None,
                sample: None,
            });
            t.service = service.map(str::to_string);
            t.rings = rings;
        }
        let keys: Vec<Key> = self.tracked.keys().copied().collect();
        self.writers = keys.len() as u64;
        let take = keys.len().min(self.max_per_tick);
        self.not_sampled = (keys.len() - take) as u64;
        if keys.is_empty() {
            return;
        }
        let start = self.cursor % keys.len();
        self.cursor = start + take;
        let mut read = Vec::with_capacity(take);
        for i in 0..take {
            let key = keys[(start + i) % keys.len()];
            let dir = proc_dir.join(key.0.to_string());
            match procfs::read(&dir) {
                Some(r) if r.stat.start_time == key.1 && !r.stat.exited() => {
                    let t = self.tracked.get_mut(&key).expect("listed above");
                    let (sample, previous) =
                        resources(key, &r, t.previous, self.ticks_per_sec, now);
                    t.previous = Some(previous);
                    t.sample = Some(ProcessResources {
                        service: t.service.clone(),
                        rings: t.rings.clone(),
                        sampled_ns: now_ns,
                        // Its last read; a new one below if the budget allows.
                        pss_bytes: t.pss_read.and_then(|(_, pss)| pss),
                        ..sample
                    });
                    read.push((t.pss_read.map(|(at, _)| at), key, dir));
                }
                // Gone, a zombie, or its pid taken by another process.
                _ => self.depart(key),
            }
        }
        // PSS as the budget allows: never read first, then the oldest.
        read.sort_by_key(|(at, key, _)| (*at, *key));
        for (_, key, dir) in read {
            let Some(pss) = self.pss.read(&dir, now) else {
                break;
            };
            let t = self.tracked.get_mut(&key).expect("read above");
            t.pss_read = Some((now, pss));
            if let Some(sample) = &mut t.sample {
                sample.pss_bytes = pss;
            }
        }
    }

    fn depart(&mut self, key: Key) {
        let Some(t) = self.tracked.remove(&key) else {
            return;
        };
        if let Some(sample) = t.sample {
            self.departed.retain(|(k, _)| *k != key);
            self.departed.push_back((key, sample));
            if self.departed.len() > DEPARTED_KEPT {
                self.departed.pop_front();
            }
        }
    }

    /// The last sample of process (`pid`, `start_time`), live or departed.
    pub fn last_sample(&self, pid: u32, start_time: u64) -> Option<ProcessResources> {
        let key = (pid, start_time);
        if let Some(t) = self.tracked.get(&key) {
            return t.sample.clone();
        }
        self.departed
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| s.clone())
    }

    /// The snapshot section; reads the reader's own process now.
    pub fn snapshot(&mut self, now: Instant, now_ns: u64) -> ProcessesSnapshot {
        let mut services: BTreeMap<Option<String>, ServiceResources> = BTreeMap::new();
        for t in self.tracked.values() {
            let Some(sample) = &t.sample else { continue };
            let s = services
                .entry(t.service.clone())
                .or_insert_with(|| ServiceResources {
                    service: t.service.clone(),
                    pss_bytes: Some(0),
                    ..ServiceResources::default()
                });
            s.processes += 1;
            s.cpu_percent += sample.cpu_percent.unwrap_or(0.0);
            s.rss_bytes += sample.rss_bytes;
            s.pss_bytes = s.pss_bytes.zip(sample.pss_bytes).map(|(a, b)| a + b);
            s.workers.push(sample.clone());
        }
        ProcessesSnapshot {
            interval_secs: self.interval.as_secs_f64(),
            max_per_tick: self.max_per_tick as u64,
            writers: self.writers,
            not_sampled: self.not_sampled,
            services: services.into_values().collect(),
            reader: self.own_process(now, now_ns),
        }
    }

    fn own_process(&mut self, now: Instant, now_ns: u64) -> Option<ReaderProcess> {
        let own = Path::new("/proc/self");
        let r = procfs::read(own)?;
        if let Some(pss) = self.pss.read(own, now) {
            self.own_pss = pss;
        }
        let key = (std::process::id(), r.stat.start_time);
        let (process, previous) = resources(key, &r, self.own, self.ticks_per_sec, now);
        self.own = Some(previous);
        let boot = self.boot_secs?;
        Some(ReaderProcess {
            process: ProcessResources {
                sampled_ns: now_ns,
                pss_bytes: self.own_pss,
                ..process
            },
            start_time_seconds: boot as f64 + r.stat.start_time as f64 / self.ticks_per_sec,
            open_fds: procfs::open_fds(),
            max_fds: procfs::max_fds(),
        })
    }
}

/// The figures of reading `r` of process `key`, with CPU % since
/// `previous` (when, ticks); returns what to keep for the next one.
fn resources(
    key: Key,
    r: &Reading,
    previous: Option<(Instant, u64)>,
    ticks_per_sec: f64,
    now: Instant,
) -> (ProcessResources, (Instant, u64)) {
    let ticks = r.stat.utime + r.stat.stime;
    let cpu_percent = previous.and_then(|(at, before)| {
        let elapsed = now.checked_duration_since(at)?.as_secs_f64();
        (elapsed > 0.0)
            .then(|| ticks.saturating_sub(before) as f64 / ticks_per_sec / elapsed * 100.0)
    });
    let sample = ProcessResources {
        pid: key.0,
        start_time: key.1,
        cpu_seconds: ticks as f64 / ticks_per_sec,
        cpu_percent,
        rss_bytes: r.rss_bytes,
        virtual_bytes: r.stat.vsize,
        threads: r.stat.threads,
        ..ProcessResources::default()
    };
    (sample, (now, ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/proc/PID` with these CPU ticks, start time and resident
    /// pages; `pss_kb` `None`: `smaps_rollup` unreadable.
    fn fake(root: &Path, pid: u32, ticks: u64, start: u64, pages: u64, pss_kb: Option<u64>) {
        let dir = root.join(pid.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stat = format!(
            "{pid} (w (1)) S 1 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 2 0 {start} 1000000 \
             {pages} 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
        );
        std::fs::write(dir.join("stat"), stat).unwrap();
        std::fs::write(dir.join("statm"), format!("250 {pages} 0 0 0 0 0\n")).unwrap();
        match pss_kb {
            Some(kb) => std::fs::write(dir.join("smaps_rollup"), format!("Pss: {kb} kB\n")),
            None => std::fs::create_dir(dir.join("smaps_rollup")),
        }
        .unwrap();
    }

    fn live(pid: u32, start_time: u64, service: &str) -> LiveWriter<'_> {
        LiveWriter {
            pid,
            start_time,
            service: Some(service),
            ring: Path::new("a.ring"),
        }
    }

    #[test]
    fn cpu_is_a_share_of_a_core_over_the_interval_and_services_add_up() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        let t0 = Instant::now();
        let hz = clock_ticks_per_sec() as u64;
        fake(p, 10, 0, 500, 100, Some(400));
        fake(p, 11, 0, 600, 50, None);
        let mut s = ProcessSampler::new(Duration::from_secs(1), 8, t0);
        s.tick_in(p, [live(10, 500, "shop"), live(11, 600, "shop")], t0, 1);
        let first = s.snapshot(t0, 1);
        assert_eq!(first.services[0].workers[0].cpu_percent, None);
        // One second later: pid 10 used half a core, pid 11 none.
        fake(p, 10, hz / 2, 500, 300, Some(900));
        fake(p, 11, 0, 600, 50, None);
        let t1 = t0 + Duration::from_secs(1);
        s.tick_in(p, [live(10, 500, "shop"), live(11, 600, "shop")], t1, 2);
        let snap = s.snapshot(t1, 2);
        let shop = &snap.services[0];
        assert_eq!(shop.service.as_deref(), Some("shop"));
        assert_eq!(shop.processes, 2);
        let w10 = &shop.workers[0];
        assert_eq!((w10.pid, w10.start_time, w10.sampled_ns), (10, 500, 2));
        assert!((w10.cpu_percent.unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(w10.rss_bytes, 300 * procfs::page_size());
        assert_eq!(w10.pss_bytes, Some(900 * 1024));
        assert_eq!(w10.rings, vec!["a.ring".to_string()]);
        assert_eq!(shop.workers[1].pss_bytes, None, "smaps_rollup unreadable");
        assert!((shop.cpu_percent - 50.0).abs() < 1e-9);
        assert_eq!(shop.rss_bytes, 350 * procfs::page_size());
        assert_eq!(shop.pss_bytes, None, "not readable for every process");
        assert!(snap.reader.is_some(), "the reader reads itself");
    }

    #[test]
    fn a_recycled_pid_is_not_the_writer_and_the_dead_keep_their_last_sample() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        let t0 = Instant::now();
        fake(p, 20, 7, 500, 100, Some(400));
        let mut s = ProcessSampler::new(Duration::from_secs(1), 8, t0);
        s.tick_in(p, [live(20, 500, "shop")], t0, 1);
        assert_eq!(
            s.last_sample(20, 500).unwrap().rss_bytes,
            100 * procfs::page_size()
        );
        // The writer died; another process got pid 20. The writer table
        // still lists the old one until the reader finds it gone.
        fake(p, 20, 9999, 777, 5000, Some(9999));
        let t1 = t0 + Duration::from_secs(1);
        s.tick_in(p, [live(20, 500, "shop")], t1, 2);
        let snap = s.snapshot(t1, 2);
        assert!(
            snap.services.is_empty(),
            "the new process is not the writer"
        );
        let last = s.last_sample(20, 500).unwrap();
        assert_eq!(
            (last.sampled_ns, last.rss_bytes),
            (1, 100 * procfs::page_size())
        );
        assert_eq!(s.last_sample(20, 777), None);
        // A writer gone from the live list departs too.
        fake(p, 21, 1, 800, 10, Some(40));
        s.tick_in(p, [live(21, 800, "x")], t1, 3);
        s.tick_in(p, [], t1, 4);
        assert_eq!(s.last_sample(21, 800).unwrap().sampled_ns, 3);
    }

    #[test]
    fn at_most_the_cap_is_read_per_tick_and_every_writer_in_turn() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        let t0 = Instant::now();
        for pid in 1..=5 {
            fake(p, pid, 0, 100, 10, Some(40));
        }
        let mut s = ProcessSampler::new(Duration::from_secs(1), 2, t0);
        let all = || (1..=5).map(|pid| live(pid, 100, "s"));
        s.tick_in(p, all(), t0, 1);
        let snap = s.snapshot(t0, 1);
        assert_eq!(
            (snap.writers, snap.not_sampled, snap.max_per_tick),
            (5, 3, 2)
        );
        assert_eq!(snap.services[0].processes, 2);
        s.tick_in(p, all(), t0, 2);
        s.tick_in(p, all(), t0, 3);
        assert_eq!(s.snapshot(t0, 3).services[0].processes, 5);
    }

    #[test]
    fn pss_reads_earn_a_hundredth_of_the_time_and_may_overdraw_it() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = PssBudget::new(t0);
        assert!(b.allows(t0));
        b.spend(ms(25)); // one large process: 15 ms owed
        assert!(!b.allows(t0 + ms(1000)), "5 ms owed after a second");
        assert!(b.allows(t0 + ms(1600)), "paid back after 1.5 s");
        // Saved up to the burst only.
        assert!(b.allows(t0 + Duration::from_secs(100)));
        assert_eq!(b.left_ns, PSS_BURST.as_nanos() as i64);
        // Time going backwards earns nothing.
        b.spend(ms(20));
        assert!(!b.allows(t0));
    }

    #[test]
    fn pss_is_read_as_the_budget_allows_oldest_first_and_kept_between() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        fake(p, 30, 0, 100, 10, Some(40));
        fake(p, 31, 0, 100, 10, Some(80));
        let mut s = ProcessSampler::new(secs(1), 8, t0);
        let all = || [live(30, 100, "s"), live(31, 100, "s")];
        s.tick_in(p, all(), t0, 1);
        let pss = |s: &ProcessSampler, pid| s.last_sample(pid, 100).unwrap().pss_bytes;
        assert_eq!((pss(&s, 30), pss(&s, 31)), (Some(40 << 10), Some(80 << 10)));
        // A read that took a second (a process of ~100 GB): owed for 100 s.
        s.pss.spend(secs(1));
        fake(p, 30, 0, 100, 20, Some(41));
        fake(p, 31, 0, 100, 20, Some(81));
        s.tick_in(p, all(), t0 + secs(1), 2);
        let w30 = s.last_sample(30, 100).unwrap();
        assert_eq!(
            w30.rss_bytes,
            20 * procfs::page_size(),
            "RSS read each tick"
        );
        assert_eq!(w30.pss_bytes, Some(40 << 10), "PSS kept from its last read");
        // Paid back: both read again (the budget allows several small reads).
        s.tick_in(p, all(), t0 + secs(102), 3);
        assert_eq!((pss(&s, 30), pss(&s, 31)), (Some(41 << 10), Some(81 << 10)));
        // Room for one read only: the one read longest ago goes first.
        fake(p, 30, 0, 100, 20, Some(42));
        fake(p, 31, 0, 100, 20, Some(82));
        s.tracked.get_mut(&(30, 100)).unwrap().pss_read = Some((t0, Some(41 << 10)));
        s.pss.left_ns = 1;
        s.pss.earned_to = t0 + secs(103);
        s.tick_in(p, all(), t0 + secs(103), 4);
        assert_eq!(pss(&s, 30), Some(42 << 10), "read longest ago: read");
        assert_eq!(pss(&s, 31), Some(81 << 10), "the budget ran out: kept");
    }

    #[test]
    fn sampling_off_reads_no_writer() {
        let t0 = Instant::now();
        let mut s = ProcessSampler::new(Duration::ZERO, 8, t0);
        assert!(!s.due(t0));
        let mut on = ProcessSampler::new(Duration::from_secs(1), 8, t0);
        assert!(on.due(t0));
        assert!(!on.due(t0 + Duration::from_millis(500)));
        assert!(on.due(t0 + Duration::from_secs(1)));
    }
}
