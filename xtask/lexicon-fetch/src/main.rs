//! The binary behind `cargo xtask lexicons fetch` and `cargo xtask lexicons verify DIR` (see
//! the library docs).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // xtask/lexicon-fetch → the repository root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or(Path::new("."));
    let command = match xtask_lexicon_fetch::cli::parse(std::env::args_os().skip(1).collect(), root)
    {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    match xtask_lexicon_fetch::cli::run(&command, &mut std::io::stderr()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
