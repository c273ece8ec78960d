//! `cargo xtask`: see `cargo xtask --help` and the library docs.

use std::io::Write;
use std::process::ExitCode;

use xtask::cli::{self, Command};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Command::Help(topic) = command {
        print!("{}", topic.text());
        return ExitCode::SUCCESS;
    }
    let result = xtask::project_root().and_then(|root| {
        let mut stderr = std::io::stderr();
        let result = xtask::run(command, &root, &mut stderr);
        let _ = stderr.flush();
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
