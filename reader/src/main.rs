//! `profilis-reader`: see `profilis-reader --help`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = profilis_reader::app::cli::Cli::parse();
    match profilis_reader::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("profilis-reader: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
