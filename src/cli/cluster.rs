//! `sluice cluster quorum|brokers`, like kafka-metadata-quorum.sh and kafka-broker-api-versions:
//! the controller quorum (leader, epoch, each voter's log end offset and lag) and the live
//! brokers of a multi-node cluster.

use clap::{Args, Subcommand};

use super::table::Table;
use super::{CliError, Common, OutputFormat, print_json};

/// The `sluice cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The controller quorum: leader, epoch, high watermark, voters and their lag.
    Quorum(ClusterArgs),
    /// The cluster id, the controller and every live broker (shard).
    Brokers(ClusterArgs),
}

/// Arguments of the `sluice cluster` subcommands.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
}

/// Runs one `sluice cluster` subcommand.
pub fn run(command: ClusterCommand) -> Result<(), CliError> {
    match command {
        ClusterCommand::Quorum(a) => quorum(&a),
        ClusterCommand::Brokers(a) => brokers(&a),
    }
}

fn quorum(a: &ClusterArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let state = client.describe_quorum()?;
    match a.common.output {
        OutputFormat::Json => print_json(&state),
        OutputFormat::Table => {
            println!(
                "leader: {}  epoch: {}  high watermark: {}",
                state.leader, state.epoch, state.high_watermark
            );
            let mut table = Table::new(&["VOTER", "ENDPOINT", "ROLE", "LOG-END-OFFSET", "LAG"]);
            for v in &state.voters {
                let role = if v.id == state.leader {
                    "leader"
                } else {
                    "follower"
                };
                table.row(vec![
                    v.id.to_string(),
                    v.endpoint.clone().unwrap_or_else(|| "-".into()),
                    role.into(),
                    v.log_end_offset.to_string(),
                    v.lag.map_or_else(|| "-".into(), |l| l.to_string()),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

fn brokers(a: &ClusterArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let state = client.describe_cluster()?;
    match a.common.output {
        OutputFormat::Json => print_json(&state),
        OutputFormat::Table => {
            println!(
                "cluster id: {}  controller: {}",
                state.cluster_id, state.controller
            );
            let mut table = Table::new(&["BROKER", "NODE", "ADDRESS"]);
            for (id, addr) in &state.brokers {
                table.row(vec![id.to_string(), (id / 1000).to_string(), addr.clone()]);
            }
            table.print();
            Ok(())
        }
    }
}
