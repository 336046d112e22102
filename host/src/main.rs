//! The `task-host` binary: parse the command line, set up logging, run, and report any
//! error as one line on stderr with a non-zero exit status.

use std::process::ExitCode;

use clap::Parser as _;
use task_host::cli::Cli;

fn main() -> ExitCode {
    let Cli {
        log_format,
        log,
        command,
    } = Cli::parse();
    task_host::ops::telemetry::init(log_format, log);
    match task_host::run(command) {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` joins the context chain with ": "; wasmtime messages may still hold
            // newlines, and a configuration error must stay one line.
            let message = format!("{error:#}")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("task-host: error: {message}");
            ExitCode::FAILURE
        }
    }
}
