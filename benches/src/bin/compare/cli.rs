//! The command line: the options of a run, the help text, and parsing them
//! into [`Options`].

use anyhow::{bail, ensure, Context, Result};

const HELP: &str = "\
compare: the ring's cost against the floor and peer queues, in one run

USAGE: compare [--runs N] [--seconds S] [--rate R] [--batch] [--cases LIST]
               [--json] [--quick] [--list]

  --runs N      rounds of every case, interleaved (default 5; 1 with --quick)
  --seconds S   timed seconds per case and round (default 1; 0.1 with --quick)
  --rate R      events/s of all producers of a case together (default
                4000000); 0 emits back to back and saturates the consumer
  --batch       time bursts of 256 calls (mean per call) instead of single
                calls (the default on machines without an invariant TSC)
  --cases LIST  comma-separated: run only the cases whose name (rtrb),
                group (1w-polling), consumer mode (polling) or id
                (rtrb/1w-polling) is listed; --list shows them
  --json        one JSON object per row, then one per target, then one
                describing the run
  --quick       a smoke run of a few seconds (--runs 1 --seconds 0.1)
  --list        print every case id and exit
  -h, --help    this text";

pub(crate) struct Options {
    pub(crate) json: bool,
    pub(crate) runs: usize,
    pub(crate) seconds: f64,
    pub(crate) rate: f64,
    pub(crate) batch: bool,
    pub(crate) cases: Option<Vec<String>>,
    pub(crate) list: bool,
}

pub(crate) fn parse_args(args: &[String]) -> Result<Options> {
    let (mut json, mut quick, mut batch, mut list) = (false, false, false, false);
    let (mut runs, mut seconds, mut rate, mut cases) = (None, None, 4e6, None);
    let mut args = args.iter();
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .with_context(|| format!("{flag} needs a value\n\n{HELP}"))
        };
        match a.as_str() {
            "--json" => json = true,
            "--quick" => quick = true,
            "--batch" => batch = true,
            "--list" => list = true,
            "--runs" => {
                let v = value("--runs")?;
                runs = Some(
                    v.parse()
                        .ok()
                        .filter(|n: &usize| *n > 0)
                        .with_context(|| format!("--runs {v:?} is not a positive integer"))?,
                );
            }
            "--seconds" => {
                let v = value("--seconds")?;
                seconds = Some(
                    v.parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && s.is_finite())
                        .with_context(|| format!("--seconds {v:?} is not a positive number"))?,
                );
            }
            "--rate" => {
                let v = value("--rate")?;
                rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r >= 0.0 && r.is_finite())
                    .with_context(|| format!("--rate {v:?} is not a number >= 0"))?;
            }
            "--cases" => {
                let v = value("--cases")?;
                let list: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                ensure!(!list.is_empty(), "--cases needs at least one name");
                cases = Some(list);
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{HELP}"),
        }
    }
    Ok(Options {
        json,
        runs: runs.unwrap_or(if quick { 1 } else { 5 }),
        seconds: seconds.unwrap_or(if quick { 0.1 } else { 1.0 }),
        rate,
        batch,
        cases,
        list,
    })
}
