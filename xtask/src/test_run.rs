//! A run of `cargo test`: its output passed through, and closed with the totals over every
//! test binary, since cargo's own last line is often a doc-test run of zero tests, which says
//! nothing.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use test_support::COMPONENTS_ENV;

use crate::cargo;

/// Cases per fuzz target (the proptest targets of the router, request validation, id parsing
/// and kv-fs names): about 8 s for all of them on two cores. A `PROPTEST_CASES` already set
/// wins, for longer runs.
pub(crate) const FUZZ_CASES: &str = "2048";

/// Runs `cargo` with `args` (`test …`), with the test components in `components` if the
/// tests serve any, passing its output through, and prints the totals.
pub(crate) fn cargo_test(args: &[&str], components: Option<&Path>) -> anyhow::Result<()> {
    let mut command = cargo::command();
    command.args(args);
    let mut shown = format!("cargo {}", args.join(" "));
    if let Some(components) = components {
        command.env(COMPONENTS_ENV, components);
        shown = format!("{COMPONENTS_ENV}={} {shown}", components.display());
    }
    eprintln!("==> tests: {shown}");
    if std::env::var_os("PROPTEST_CASES").is_none() {
        command.env("PROPTEST_CASES", FUZZ_CASES);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("tests: cannot run cargo")?;
    let stdout = child.stdout.take().context("tests: no stdout")?;
    let mut totals = Totals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("tests: reading cargo's output")?;
        println!("{line}");
        totals.add(&line);
    }
    let status = child.wait().context("tests: waiting for cargo")?;
    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; …` lines, and the fault suite's
/// `faults: 11 passed, 0 failed, 2 skipped`.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    passed: u64,
    failed: u64,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some(counts) = line
            .strip_prefix("test result: ")
            .or_else(|| line.strip_prefix("faults: "))
        else {
            return;
        };
        for part in counts.split([';', '.', ',']) {
            let mut words = part.split_whitespace();
            match (
                words.next().and_then(|n| n.parse::<u64>().ok()),
                words.next(),
            ) {
                (Some(n), Some("passed")) => self.passed += n,
                (Some(n), Some("failed")) => self.failed += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn totals_sum_libtest_result_lines() {
        let mut totals = Totals::default();
        totals.add("test result: ok. 44 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        totals
            .add("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        totals.add("test api::tests::x ... ok");
        totals.add("faults: ran in 21.30 s");
        totals.add("faults: 11 passed, 0 failed, 2 skipped");
        assert_eq!(
            totals,
            Totals {
                passed: 57,
                failed: 1
            }
        );
    }
}
