//! # The fault suite
//!
//! `cargo xtask faults`, which `cargo xtask test` runs too: one program that puts the real
//! `task-host` binary through the faults it must survive, and prints what it saw as a table,
//! fault → expected → seen. It exits 1 if any row's expectation was not met.
//!
//! - [`guest`]: a trap, an endless loop and a memory bomb, before and after the answer's
//!   head, and a sleep past `--request-timeout` after it, while clients send normal
//!   requests: none of those may fail.
//! - [`client`]: heads dribbled a byte at a time, 1,000 idle connections, one connection
//!   over the cap, heads of 64 KiB and 1 MiB; a normal request is answered promptly all along.
//! - [`store`]: the redb file made immutable, and the disk full: clean 500s, then recovery.
//! - [`redis`]: Redis stopped under `--store redis://…`: 503s at once, then recovery.
//! - [`crash`]: twenty `kill -9`s in the middle of concurrent creates on redb: nothing
//!   acknowledged is ever lost.
//!
//! What the table does not check is the integration tests' (`host/tests/integration`), one
//! test per behaviour: among them the bounds a guest runs within (`guest_limits.rs`) and the
//! HTTP/1 that clients speak (`client_protocol.rs`). A guest or client fault that is a row
//! here is not tested the same way there.
//!
//! Not a libtest harness: the scenarios run one after another, since each measures how the
//! server answers others while it takes a fault, and their output is a table. Arguments
//! follow libtest where they mean something here: `NAME` runs the scenarios whose name holds
//! it, `--skip NAME` leaves them out, `--list` lists them; other flags are ignored.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Instant;

use crate::table::{Row, Verdict, duration};

mod client;
#[path = "../common/mod.rs"]
#[allow(dead_code, reason = "the integration tests use the rest")]
mod common;
mod crash;
mod guest;
mod load;
mod redis;
mod store;
mod table;

/// A scenario: runs against servers of its own and returns its rows.
type Scenario = fn() -> Pin<Box<dyn Future<Output = Vec<Row>> + Send>>;

/// Every scenario, in the order they run.
fn scenarios() -> [(&'static str, Scenario); 5] {
    [
        ("guest", || Box::pin(guest::rows())),
        ("client", || Box::pin(client::rows())),
        ("store", || Box::pin(store::rows())),
        ("redis", || Box::pin(redis::rows())),
        ("crash", || Box::pin(crash::rows())),
    ]
}

fn main() -> ExitCode {
    let selection = Selection::from_args();
    let scenarios: Vec<(&str, Scenario)> = scenarios()
        .into_iter()
        .filter(|(name, _)| selection.selects(name))
        .collect();
    if selection.list {
        for (name, _) in &scenarios {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if scenarios.is_empty() {
        println!("faults: no scenario matches");
        return ExitCode::SUCCESS;
    }
    // Without the components nothing can run: say so once, before any server starts.
    common::components();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let started = Instant::now();
    let mut rows = Vec::new();
    for (name, scenario) in scenarios {
        eprintln!("faults: {name} …");
        let began = Instant::now();
        match runtime.block_on(runtime.spawn(scenario())) {
            Ok(scenario_rows) => rows.extend(scenario_rows),
            Err(error) => rows.push(Row::checked(
                format!("scenario {name}"),
                "runs to the end",
                false,
                format!("panicked: {}", panic_message(error)),
            )),
        }
        eprintln!("faults: {name} took {}", duration(began.elapsed()));
    }
    println!("{}", table::render(&rows));
    let tally = |verdict| rows.iter().filter(|row| row.verdict == verdict).count();
    let failed = tally(Verdict::NotMet);
    println!("faults: ran in {}", duration(started.elapsed()));
    println!(
        "faults: {} passed, {failed} failed, {} skipped",
        tally(Verdict::Met),
        tally(Verdict::Skipped)
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned()),
        Err(error) => error.to_string(),
    }
}

/// Which scenarios to run, from libtest-style arguments.
#[derive(Debug, Default)]
struct Selection {
    filters: Vec<String>,
    skips: Vec<String>,
    list: bool,
}

impl Selection {
    fn from_args() -> Self {
        let mut selection = Self::default();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => selection.list = true,
                "--skip" => selection.skips.extend(args.next()),
                // libtest flags that take a value, which is not a filter.
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z"
                | "--shuffle-seed" => {
                    args.next();
                }
                flag if flag.starts_with('-') => {
                    if let Some(skip) = flag.strip_prefix("--skip=") {
                        selection.skips.push(skip.to_owned());
                    }
                }
                filter => selection.filters.push(filter.to_owned()),
            }
        }
        selection
    }

    fn selects(&self, name: &str) -> bool {
        let wanted = self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f));
        wanted && !self.skips.iter().any(|skip| name.contains(skip))
    }
}
