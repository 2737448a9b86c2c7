//! The `sluice` binary: parses the command line and hands off. `serve` starts the broker;
//! other subcommands are tools. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use sluice::config::{BrokerConfig, Overrides};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A Kafka-compatible, thread-per-core streaming broker"
)]
struct Cli {
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker: one shard per core, each a Kafka broker on its own port.
    Serve {
        /// Data directory (Kafka's log.dirs).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long)]
        host: Option<String>,
        /// Bootstrap port; shard c listens on port+1+c.
        #[arg(long)]
        port: Option<u16>,
        /// Number of shards (cores) to run; default: all cores.
        #[arg(long)]
        cores: Option<usize>,
        /// Node id (shard broker ids are node_id*1000 + core).
        #[arg(long)]
        node_id: Option<i32>,
        /// server.properties-style configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Prometheus endpoint address (`/metrics`, `/health`); `off` disables it.
        #[arg(long)]
        metrics_addr: Option<String>,
    },
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    match cli.command {
        Command::Serve {
            data_dir,
            host,
            port,
            cores,
            node_id,
            config,
            metrics_addr,
        } => {
            let overrides = Overrides {
                data_dir,
                host,
                port,
                cores,
                node_id,
                metrics_addr,
            };
            let config = match BrokerConfig::load(config.as_deref(), &overrides, available_cores())
            {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("sluice: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            match sluice::shard::runtime::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sluice: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
