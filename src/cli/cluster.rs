//! `sluice cluster quorum|brokers|reassign|reassignments`, like kafka-metadata-quorum.sh,
//! kafka-broker-api-versions and kafka-reassign-partitions.sh: the controller quorum (leader,
//! epoch, each voter's log end offset and lag), the live brokers of a multi-node cluster, and
//! moving partitions' replicas between brokers.

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
    /// Moves a partition's replicas to other brokers (or cancels its move); returns once the
    /// cluster accepted it: `sluice cluster reassignments` shows the move until it is done.
    Reassign(ReassignArgs),
    /// The partition reassignments under way.
    Reassignments(ClusterArgs),
}

/// Arguments of `sluice cluster reassign`.
#[derive(Debug, Args)]
pub struct ReassignArgs {
    /// Topic of the partition.
    #[arg(long)]
    pub topic: String,
    /// Partition index.
    #[arg(long)]
    pub partition: i32,
    /// Target broker ids, preferred leader first, comma-separated (e.g. 1000,2000,3000).
    #[arg(long, value_delimiter = ',', required_unless_present = "cancel")]
    pub replicas: Vec<i32>,
    /// Cancel the partition's move under way instead.
    #[arg(long, conflicts_with = "replicas")]
    pub cancel: bool,
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
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
        ClusterCommand::Reassign(a) => reassign(&a),
        ClusterCommand::Reassignments(a) => reassignments(&a),
    }
}

fn reassign(a: &ReassignArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let target = (!a.cancel).then_some(a.replicas.as_slice());
    client.reassign(&a.topic, a.partition, target)?;
    match target {
        Some(r) => println!(
            "reassignment of {}-{} to {r:?} accepted; `sluice cluster reassignments` shows it until it completes",
            a.topic, a.partition
        ),
        None => println!("reassignment of {}-{} cancelled", a.topic, a.partition),
    }
    Ok(())
}

fn reassignments(a: &ClusterArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let moves = client.reassignments()?;
    match a.common.output {
        OutputFormat::Json => print_json(&moves),
        OutputFormat::Table => {
            let ids = |l: &[i32]| l.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            let mut table = Table::new(&["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"]);
            for m in &moves {
                table.row(vec![
                    m.topic.clone(),
                    m.partition.to_string(),
                    ids(&m.replicas),
                    ids(&m.adding),
                    ids(&m.removing),
                ]);
            }
            table.print();
            Ok(())
        }
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
