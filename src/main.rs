//! The `shopbridge` binary: parses the command line, starts telemetry, and hands each command
//! to the library.

use clap::Parser as _;
use shopbridge::cli::{Cli, Command};
use shopbridge::{app, bench, commands, shutdown, telemetry};

/// mimalloc (v3, the crate's default) instead of the system allocator: a worker batch allocates
/// and frees thousands of short-lived strings and buffers (event bodies, order lines, query
/// arguments), and with glibc's malloc a third of the worker's CPU went to malloc, free and their
/// consolidation. In `bench worker` runs interleaved with the glibc build, the process used 18 %
/// less CPU and drained 10 % faster (docs/benchmarks.md). Built with `no_thp` (Cargo.toml): with
/// transparent huge pages the children's peak RSS in `bench all` was 88–130 MB, without them
/// 50–75 MB (glibc: 42–72 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        None => app::run(cli.run, shutdown::on_signal()).await,
        Some(Command::Run(args)) => app::run(args, shutdown::on_signal()).await,
        Some(Command::Serve(args)) => app::serve(args, shutdown::on_signal()).await,
        Some(Command::Worker(args)) => app::worker(args, shutdown::on_signal()).await,
        Some(Command::Migrate(args)) => commands::migrate(&args.db).await,
        Some(Command::Connections(cmd)) => commands::connections::run(cmd).await,
        Some(Command::Events(cmd)) => commands::ledger::events(cmd).await,
        Some(Command::Ledger(cmd)) => commands::ledger::ledger(cmd).await,
        Some(Command::Periods(cmd)) => commands::periods::run(cmd).await,
        Some(Command::Export(cmd)) => commands::periods::export(cmd).await,
        Some(Command::Dlq(cmd)) => commands::admin::dlq(cmd).await,
        Some(Command::Rules(cmd)) => commands::admin::rules(cmd).await,
        Some(Command::Tokens(cmd)) => commands::admin::tokens(cmd).await,
        Some(Command::Users(cmd)) => commands::admin::users(cmd).await,
        Some(Command::SendTestEvent(args)) => commands::send_test_event(args).await,
        Some(Command::Bench(cmd)) => bench::run(cmd).await,
        Some(Command::Healthcheck { url }) => commands::healthcheck(&url).await,
    }
}
