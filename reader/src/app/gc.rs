//! `profilis-reader gc`: the ring files nobody needs any more, listed, and
//! removed with `--remove`. A ring file is stale when its writers have all
//! exited, everything in it is drained, and no process (writer or reader)
//! has it open: the same test the reader applies before it removes the
//! file of a finished ring (see [`crate::ingest::lifecycle`]). Without
//! `--remove` nothing changes on disk, so the list can be read first.

use super::cli::GcArgs;
use crate::ingest::lifecycle::{self, FileState, Kept, RingFile};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs `gc`.
pub fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        let ring = profilis::default_ring_path();
        vec![ring
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for path in &paths {
        if path.is_dir() {
            files.extend(
                lifecycle::list(path).with_context(|| format!("listing {}", path.display()))?,
            );
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", path.display());
        }
    }
    let mut out = std::io::stdout().lock();
    let mut stale = (0u64, 0u64);
    let mut failed = 0;
    for path in &files {
        let file = RingFile::gc(path, args.remove);
        let size = format!("{} of {}", mib(file.allocated), mib(file.bytes));
        let (verdict, detail) = match &file.state {
            FileState::Stale { writers } => {
                stale.0 += 1;
                stale.1 += file.allocated;
                let verdict = if args.remove { "removed" } else { "stale" };
                (verdict, exited(writers))
            }
            FileState::Kept(kept @ Kept::Unread(_)) => (
                "unread",
                format!(
                    "{kept}; drain it first: profilis-reader {} --once --jsonl-dir DIR",
                    path.display()
                ),
            ),
            FileState::Kept(Kept::Io(e)) => {
                failed += 1;
                ("failed", e.to_string())
            }
            FileState::Kept(kept) => ("in use", kept.to_string()),
            FileState::Unusable(why) => ("skipped", why.clone()),
        };
        writeln!(out, "{verdict:<8} {size:>22}  {}  {detail}", path.display())?;
    }
    let (count, bytes) = stale;
    if files.is_empty() {
        writeln!(out, "no ring files in {}", shown(&paths))?;
    } else if args.remove {
        writeln!(
            out,
            "removed {count} stale ring files ({} freed)",
            mib(bytes)
        )?;
    } else if count > 0 {
        writeln!(
            out,
            "{count} stale ring files ({}); nothing was removed: run again with --remove to remove them",
            mib(bytes)
        )?;
    } else {
        writeln!(out, "no stale ring files")?;
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn exited(writers: &[u32]) -> String {
    match writers {
        [] => "never written; no process has it open".into(),
        [pid] => format!("writer {pid} exited; drained"),
        pids => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("writers {} exited; drained", pids.join(", "))
        }
    }
}

fn shown(paths: &[PathBuf]) -> String {
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    paths.join(", ")
}

/// `bytes` in MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}
