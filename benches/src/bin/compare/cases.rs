//! The cases: what each one measures ([`Peer`]), who drains its queue
//! ([`ConsumerKind`]), how many writers it has, its id and group as the
//! report and `--cases` name them, and the list of every case in report
//! order.

use profilis_benches::consume::ConsumerMode;

/// What a case measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    TimerOverhead,
    Floor,
    Rtrb,
    NaiveShmSpsc,
    ArrayQueue,
    MutexVecDeque,
    Profilis,
    TracingJson,
    ProfilisDrain,
}

impl Peer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::TimerOverhead => "timer_overhead",
            Peer::Floor => "floor",
            Peer::Rtrb => "rtrb",
            Peer::NaiveShmSpsc => "naive_shm_spsc",
            Peer::ArrayQueue => "crossbeam_array_queue",
            Peer::MutexVecDeque => "mutex_vecdeque",
            Peer::Profilis => "profilis_emit",
            Peer::TracingJson => "tracing_json_nonblocking",
            Peer::ProfilisDrain => "profilis_drain",
        }
    }
}

/// Who drains a case's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConsumerKind {
    /// Nothing runs beside the producers.
    None,
    /// The shared consumer loop, in this mode.
    Loop(ConsumerMode),
    /// tracing-appender's own worker thread.
    Appender,
}

impl ConsumerKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            ConsumerKind::None => "-",
            ConsumerKind::Loop(mode) => mode.label(),
            ConsumerKind::Appender => "appender",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Case {
    pub(crate) peer: Peer,
    pub(crate) consumer: ConsumerKind,
    /// Producers in all: threads of this process, or child processes of
    /// one producer thread each.
    pub(crate) producers: usize,
    /// Whether the producers are child processes rather than threads.
    pub(crate) processes: bool,
}

impl Case {
    pub(crate) fn group(&self) -> String {
        match (self.peer, self.consumer) {
            (Peer::TimerOverhead, _) => "timer".into(),
            (Peer::TracingJson, _) => "tracing".into(),
            (Peer::ProfilisDrain, _) => "drain".into(),
            (_, consumer) => format!(
                "{}{}-{}",
                self.producers,
                if self.processes { "proc" } else { "w" },
                consumer.label()
            ),
        }
    }

    pub(crate) fn id(&self) -> String {
        format!("{}/{}", self.peer.name(), self.group())
    }

    pub(crate) fn writers_label(&self) -> String {
        if self.processes {
            format!("{} proc", self.producers)
        } else {
            self.producers.to_string()
        }
    }

    pub(crate) fn selected_by(&self, filter: &str) -> bool {
        filter == self.peer.name()
            || filter == self.group()
            || filter == self.consumer.label()
            || filter == self.id()
    }
}

/// Every case, in report order.
pub(crate) fn all_cases() -> Vec<Case> {
    let case = |peer, consumer, producers, processes| Case {
        peer,
        consumer,
        producers,
        processes,
    };
    let mut cases = vec![case(Peer::TimerOverhead, ConsumerKind::None, 1, false)];
    for mode in [ConsumerMode::Backoff, ConsumerMode::Polling] {
        let consumer = ConsumerKind::Loop(mode);
        for peer in [
            Peer::Floor,
            Peer::Rtrb,
            Peer::NaiveShmSpsc,
            Peer::ArrayQueue,
            Peer::MutexVecDeque,
            Peer::Profilis,
        ] {
            cases.push(case(peer, consumer, 1, false));
        }
        for peer in [
            Peer::Floor,
            Peer::ArrayQueue,
            Peer::MutexVecDeque,
            Peer::Profilis,
        ] {
            cases.push(case(peer, consumer, 2, false));
        }
        cases.push(case(Peer::Profilis, consumer, 2, true));
    }
    for threads in [4, 8] {
        for peer in [Peer::Floor, Peer::Profilis] {
            cases.push(case(
                peer,
                ConsumerKind::Loop(ConsumerMode::Backoff),
                threads,
                false,
            ));
        }
    }
    cases.push(case(Peer::TracingJson, ConsumerKind::Appender, 1, false));
    cases.push(case(Peer::ProfilisDrain, ConsumerKind::None, 1, false));
    cases
}
