//! `cargo xtask`: see `cargo xtask --help` and the library docs.

use std::io::Write;
use std::process::ExitCode;

use xtask::cli::{self, Command};

/// See `xtask/Cargo.toml`: rendering is allocation-bound, and mimalloc is faster at it than the
/// system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // Help and the benchmark report are the output asked for; everything else writes progress
    // next to cargo's, on stderr.
    let mut out: Box<dyn Write> = match command {
        Command::Help(_) | Command::Bench(_) => Box::new(std::io::stdout()),
        _ => Box::new(std::io::stderr()),
    };
    let result = xtask::project_root().and_then(|root| xtask::run(command, &root, &mut out));
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
