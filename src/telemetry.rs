//! Logging and tracing set-up: one subscriber for the process, pretty on a terminal and JSON in
//! compose, filtered by `RUST_LOG`.
//!
//! Logs go to standard error, always: standard output is a command's result
//! (`shopbridge connections add --json | jq .secret` must see JSON alone), and a container
//! runtime collects both streams, so the services lose nothing by it. (STYLE.md's sketch sends
//! JSON logs to stdout; the operator commands are why we do not.)

use std::io::IsTerminal as _;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "shopbridge=info,tower_http=info,warn";

/// Installs the global subscriber. Call once, from `main`.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .init(),
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false),
            )
            .init(),
    }
}
