//! The `sluice` binary: parses the command line and hands off. `serve` starts the broker;
//! the other subcommands are Kafka-style tools implemented in `sluice::cli`. Nothing else
//! lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use sluice::cli;
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
        /// Print the effective configuration with the source of each value, then exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Create, list, describe, alter and delete topics (like kafka-topics.sh).
    #[command(subcommand)]
    Topics(cli::topics::TopicsCommand),
    /// Send stdin lines as records (like kafka-console-producer.sh).
    Produce(cli::produce::ProduceArgs),
    /// Print records of a topic (like kafka-console-consumer.sh).
    Consume(cli::consume::ConsumeArgs),
    /// List, describe, reset offsets of and delete consumer groups (like
    /// kafka-consumer-groups.sh).
    #[command(subcommand)]
    Groups(cli::groups::GroupsCommand),
    /// Describe and alter topic and broker configs (like kafka-configs.sh).
    #[command(subcommand)]
    Configs(cli::configs::ConfigsCommand),
    /// See a multi-node cluster: the controller quorum and the live brokers (like
    /// kafka-metadata-quorum.sh).
    #[command(subcommand)]
    Cluster(cli::cluster::ClusterCommand),
    /// List, add and remove ACLs (like kafka-acls.sh).
    Acls(cli::acls::AclsArgs),
    /// List, describe, add and delete SCRAM users (like kafka-configs.sh --entity-type users).
    Users(cli::users::UsersArgs),
    /// Print segment and index files (like kafka-dump-log.sh); needs no broker.
    DumpLog(cli::dump_log::DumpLogArgs),
}

fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn main() -> ExitCode {
    let args = Cli::parse();
    sluice::logging::init(&args.log_level);
    if !matches!(args.command, Command::Serve { .. }) {
        cli::restore_default_sigpipe();
    }
    match args.command {
        Command::Topics(c) => cli::report(cli::topics::run(c)),
        Command::Produce(a) => cli::report(cli::produce::run(a)),
        Command::Consume(a) => cli::report(cli::consume::run(a)),
        Command::Groups(c) => cli::report(cli::groups::run(c)),
        Command::Configs(c) => cli::report(cli::configs::run(c)),
        Command::DumpLog(a) => cli::report(cli::dump_log::run(a)),
        Command::Cluster(c) => cli::report(cli::cluster::run(c)),
        Command::Acls(a) => cli::report(cli::acls::run(a)),
        Command::Users(a) => cli::report(cli::users::run(a)),
        Command::Serve {
            data_dir,
            host,
            port,
            cores,
            node_id,
            config,
            metrics_addr,
            print_config,
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
                    sluice::logging::last_words(&format!("sluice: configuration error: {e}"));
                    return ExitCode::from(2);
                }
            };
            if print_config {
                for (key, value, source) in config.effective() {
                    sluice::logging::print_line(&format!("{key}={value}  # {source}"));
                }
                return ExitCode::SUCCESS;
            }
            match sluice::node::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    sluice::logging::last_words(&format!("sluice: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
