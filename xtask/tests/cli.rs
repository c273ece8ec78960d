//! The `cargo xtask` binary: help and usage errors.

use std::process::{Command, Output};

use xtask::cli::Topic;

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn no_arguments_and_help_print_the_subcommands() {
    for args in [&[][..], &["--help"], &["-h"], &["help"]] {
        let output = xtask(args);
        assert!(output.status.success(), "{args:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout, Topic::Main.text(), "{args:?}");
        for command in ["lexicons sync", "lexicons pin", "lexicons verify", "test"] {
            assert!(stdout.contains(command), "{command} in {stdout}");
        }
    }
}

#[test]
fn subcommand_help() {
    let cases: [(&[&str], Topic); 4] = [
        (&["lexicons"], Topic::Lexicons),
        (&["lexicons", "sync", "--help"], Topic::Sync),
        (&["lexicons", "pin", "--help"], Topic::Pin),
        (&["test", "--help"], Topic::Test),
    ];
    for (args, topic) in cases {
        let output = xtask(args);
        assert!(output.status.success(), "{args:?}");
        assert_eq!(String::from_utf8(output.stdout).unwrap(), topic.text());
    }
}

#[test]
fn usage_errors_exit_with_2_and_point_at_the_help() {
    let output = xtask(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "error: unknown command `frobnicate` (see `cargo xtask --help`)\n"
    );

    let output = xtask(&["lexicons", "sync", "--bogus"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("unknown flag `--bogus`"), "{stderr}");
    assert!(
        stderr.contains("cargo xtask lexicons sync --help"),
        "{stderr}"
    );
}
