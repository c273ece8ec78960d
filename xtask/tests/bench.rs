//! `cargo xtask bench`: the command line (help, names, `--quick`, `--no-fail`) and its usage
//! errors. The benchmarks themselves are not run here: they take minutes and need a quiet
//! machine; `cargo xtask bench --quick` is the smoke run.

use std::process::{Command, Output};

use xtask::bench::{Bench, BenchArgs};
use xtask::cli::{self, Command as Parsed, Topic};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .unwrap()
}

fn parse(args: &[&str]) -> Result<Parsed, cli::UsageError> {
    cli::parse(args.iter().copied())
}

#[test]
fn help_is_printed_and_lists_every_benchmark() {
    for args in [
        &["bench", "--help"][..],
        &["bench", "-h"],
        &["bench", "decode", "--help"],
    ] {
        let output = xtask(args);
        assert!(output.status.success(), "{args:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout, Topic::Bench.text(), "{args:?}");
    }
    let help = Topic::Bench.text();
    for bench in Bench::ALL {
        assert!(
            help.contains(&format!("  {}  ", bench.name())),
            "{}",
            bench.name()
        );
    }
    for flag in ["--quick", "--no-fail"] {
        assert!(help.contains(flag), "{flag}");
    }
    assert!(Topic::Main.text().contains("bench"));
}

#[test]
fn no_names_means_every_benchmark() {
    let parsed = parse(&["bench"]).unwrap();
    assert_eq!(parsed, Parsed::Bench(BenchArgs::default()));
    let Parsed::Bench(args) = parsed else {
        unreachable!()
    };
    assert_eq!(args.selected(), Bench::ALL.to_vec());
}

#[test]
fn names_and_flags() {
    assert_eq!(
        parse(&["bench", "codegen", "decode", "--quick", "decode"]).unwrap(),
        Parsed::Bench(BenchArgs {
            benches: vec![Bench::Decode, Bench::Codegen],
            quick: true,
            no_fail: false,
        })
    );
    assert_eq!(
        parse(&["bench", "--no-fail", "list-page", "client", "compile"]).unwrap(),
        Parsed::Bench(BenchArgs {
            benches: vec![Bench::ListPage, Bench::Client, Bench::Compile],
            quick: false,
            no_fail: true,
        })
    );
}

#[test]
fn usage_errors_exit_with_2_and_point_at_the_bench_help() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["bench", "decoding"],
            "unknown benchmark `decoding` (known: decode, list-page, firehose, client, oauth, identity, compile, codegen, codegen-scale, stores)",
        ),
        (&["bench", "--fast"], "unknown flag `--fast`"),
        (&["bench", "--quick", "--quick"], "--quick given twice"),
        (&["bench", "--quick=yes"], "unknown flag `--quick=yes`"),
    ];
    for (args, message) in cases {
        let error = parse(args).unwrap_err();
        assert_eq!(error.message, message, "{args:?}");
        assert_eq!(error.topic, Topic::Bench, "{args:?}");
        let output = xtask(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(
            stderr,
            format!("error: {message} (see `cargo xtask bench --help`)\n"),
            "{args:?}"
        );
    }
}
