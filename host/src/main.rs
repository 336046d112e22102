//! The `task-host` binary: parse the command line, set up logging, run, and report any
//! error as one line on stderr with a non-zero exit status.

use std::process::ExitCode;

use clap::Parser as _;
use task_host::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    task_host::telemetry::init(cli.log_format);
    match task_host::run(cli.command) {
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
