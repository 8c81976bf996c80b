//! The `evconduit` binary: parse the command line, load the configuration, start Sentry and
//! logging, run.

use std::process::ExitCode;

use clap::Parser;
use evconduit::cli::{Cli, Command, run};
use evconduit::config::Config;
use evconduit::demo::DemoArgs;
use evconduit::telemetry;

fn main() -> ExitCode {
    evconduit::allocator::tune();
    let cli = Cli::parse();
    let loaded = match Config::load() {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("evconduit: {err}");
            return ExitCode::from(2);
        }
    };
    // Sentry first, before the runtime and the subscriber: its panic hook then covers every
    // thread, and the subscriber knows whether to feed it. The guard flushes events on exit.
    let sentry = telemetry::sentry_options(&loaded.config).map(telemetry::init_sentry);
    telemetry::init(loaded.config.log_format, &loaded.config.log_level, sentry.is_some());
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("evconduit: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // A bare `evconduit` (and so a bare `cargo run`) shows the whole thing working: the demo.
    let command = cli.command.unwrap_or_else(|| Command::Demo(DemoArgs::default()));
    match runtime.block_on(run(command, loaded.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("evconduit: {err:#}");
            ExitCode::FAILURE
        }
    }
}
