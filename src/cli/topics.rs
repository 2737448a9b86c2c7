//! `sluice topics create|list|describe|alter|delete`, mirroring kafka-topics.sh's flags.

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::client::admin::{NewTopic, RESOURCE_TOPIC, is_unsupported};
use crate::client::cluster::TopicInfo;
use crate::client::{Client, ClientError};

use super::table::Table;
use super::{CliError, Common, Outcome, OutputFormat, first_error, parse_key_value, print_json};

/// The `sluice topics` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topics.
    List(ListArgs),
    /// Show partitions, leaders, replicas, ISR and non-default configs.
    Describe(DescribeArgs),
    /// Add partitions or change configs of a topic.
    Alter(AlterArgs),
    /// Delete one or more topics.
    Delete(DeleteArgs),
}

/// Arguments of `sluice topics create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Name of the topic.
    #[arg(long)]
    pub topic: String,
    /// Number of partitions (default: the broker's num.partitions).
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Replicas per partition (default: the broker's default.replication.factor).
    #[arg(long)]
    pub replication_factor: Option<i16>,
    /// A topic config override, name=value; repeat for several.
    #[arg(long = "config", value_name = "NAME=VALUE")]
    pub configs: Vec<String>,
}

/// Arguments of `sluice topics list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Leave out internal topics such as __consumer_offsets.
    #[arg(long)]
    pub exclude_internal: bool,
}

/// Arguments of `sluice topics describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Topics to describe (default: all); repeat for several.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
}

/// Arguments of `sluice topics alter`.
#[derive(Debug, Args)]
pub struct AlterArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Name of the topic to alter.
    #[arg(long)]
    pub topic: String,
    /// New, larger partition count.
    #[arg(long)]
    pub partitions: Option<i32>,
    /// A config to set, name=value; repeat for several.
    #[arg(long = "config", value_name = "NAME=VALUE")]
    pub configs: Vec<String>,
}

/// Arguments of `sluice topics delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Topic to delete; repeat for several.
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
}

/// Runs one `sluice topics` subcommand.
pub fn run(command: TopicsCommand) -> Result<(), CliError> {
    match command {
        TopicsCommand::Create(a) => create(a),
        TopicsCommand::List(a) => list(a),
        TopicsCommand::Describe(a) => describe(a),
        TopicsCommand::Alter(a) => alter(a),
        TopicsCommand::Delete(a) => delete(a),
    }
}

fn parse_configs(configs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    configs
        .iter()
        .map(|c| parse_key_value(c, "--config"))
        .collect()
}

fn create(a: CreateArgs) -> Result<(), CliError> {
    if a.partitions.is_some_and(|p| p < 1) {
        return Err(CliError::usage(
            "--partitions must be at least 1",
            "pass --partitions N with N >= 1, or leave it out for the broker's default",
        ));
    }
    if a.replication_factor.is_some_and(|r| r < 1) {
        return Err(CliError::usage(
            "--replication-factor must be at least 1",
            "pass --replication-factor 1 on a single node",
        ));
    }
    let topic = NewTopic {
        name: a.topic.clone(),
        partitions: a.partitions.unwrap_or(-1),
        replication_factor: a.replication_factor.unwrap_or(-1),
        configs: parse_configs(&a.configs)?,
    };
    let mut client = a.common.connect()?;
    let results = client.create_topics(&[topic])?;
    for (name, result) in &results {
        if result.is_ok() {
            report_done(a.common.output, "created", name)?;
        }
    }
    first_error(results)
}

fn report_done(output: OutputFormat, action: &str, topic: &str) -> Result<(), CliError> {
    match output {
        OutputFormat::Table => {
            let mut verb = action.to_string();
            // Invariant: actions are non-empty ASCII words.
            verb[..1].make_ascii_uppercase();
            println!("{verb} topic {topic}.");
        }
        OutputFormat::Json => {
            return Outcome {
                resource: "topic",
                name: topic,
                result: action,
            }
            .print();
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct ListedTopic<'a> {
    topic: &'a str,
    partitions: usize,
    replication_factor: usize,
    internal: bool,
}

fn list(a: ListArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let metadata = client.refresh(None)?;
    let topics: Vec<ListedTopic> = metadata
        .topics
        .values()
        .filter(|t| !(a.exclude_internal && t.internal))
        .map(|t| ListedTopic {
            topic: &t.name,
            partitions: t.partitions.len(),
            replication_factor: t.replication_factor(),
            internal: t.internal,
        })
        .collect();
    match a.common.output {
        OutputFormat::Json => print_json(&topics),
        OutputFormat::Table => {
            let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION-FACTOR"]);
            for t in &topics {
                table.row(vec![
                    t.topic.to_string(),
                    t.partitions.to_string(),
                    t.replication_factor.to_string(),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

/// What `describe` prints for one topic.
#[derive(Serialize)]
struct TopicDescription {
    topic: String,
    topic_id: String,
    partition_count: usize,
    replication_factor: usize,
    configs: std::collections::BTreeMap<String, String>,
    partitions: Vec<PartitionRow>,
}

#[derive(Serialize)]
struct PartitionRow {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

fn describe(a: DescribeArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let infos: Vec<TopicInfo> = if a.topics.is_empty() {
        client.refresh(None)?.topics.values().cloned().collect()
    } else {
        a.topics
            .iter()
            .map(|t| client.topic(t))
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for info in infos {
        let configs = topic_overrides(&mut client, &info.name)?;
        out.push(TopicDescription {
            topic: info.name.clone(),
            topic_id: kafka_uuid(&info.id),
            partition_count: info.partitions.len(),
            replication_factor: info.replication_factor(),
            configs,
            partitions: info
                .partitions
                .iter()
                .map(|p| PartitionRow {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                })
                .collect(),
        });
    }
    match a.common.output {
        OutputFormat::Json => print_json(&out),
        OutputFormat::Table => {
            for (i, d) in out.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print_description(d);
            }
            Ok(())
        }
    }
}

fn print_description(d: &TopicDescription) {
    let configs: Vec<String> = d.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let header = format!(
        "Topic: {}  TopicId: {}  PartitionCount: {}  ReplicationFactor: {}  Configs: {}",
        d.topic,
        d.topic_id,
        d.partition_count,
        d.replication_factor,
        configs.join(",")
    );
    println!("{}", header.trim_end());
    let mut table = Table::new(&["PARTITION", "LEADER", "REPLICAS", "ISR"]);
    for p in &d.partitions {
        table.row(vec![
            p.partition.to_string(),
            p.leader.to_string(),
            join_ids(&p.replicas),
            join_ids(&p.isr),
        ]);
    }
    table.print();
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Topic-level overrides only (what kafka-topics.sh --describe shows as Configs). A broker
/// without DescribeConfigs simply shows none.
fn topic_overrides(
    client: &mut Client,
    topic: &str,
) -> Result<std::collections::BTreeMap<String, String>, CliError> {
    match client.describe_configs(RESOURCE_TOPIC, topic) {
        Ok(entries) => Ok(entries
            .into_iter()
            .filter(|e| e.source == "DYNAMIC_TOPIC_CONFIG")
            .map(|e| (e.name, e.value.unwrap_or_default()))
            .collect()),
        Err(e) if is_unsupported(&e) => Ok(Default::default()),
        Err(e) => Err(e.into()),
    }
}

/// Kafka shows topic ids as URL-safe base64 without padding.
pub fn kafka_uuid(id: &uuid::Uuid) -> String {
    crate::metadata::cluster::kafka_base64_uuid(id)
}

fn alter(a: AlterArgs) -> Result<(), CliError> {
    if a.partitions.is_none() && a.configs.is_empty() {
        return Err(CliError::usage(
            "nothing to alter",
            "pass --partitions N to add partitions and/or --config name=value",
        ));
    }
    let configs = parse_configs(&a.configs)?;
    let mut client = a.common.connect()?;
    let info = client.topic(&a.topic)?;
    if let Some(count) = a.partitions {
        if count <= info.partitions.len() as i32 {
            return Err(CliError::usage(
                format!(
                    "topic '{}' already has {} partitions; --partitions {count} would not add any",
                    a.topic,
                    info.partitions.len()
                ),
                "partitions can only be added; pass a larger --partitions",
            ));
        }
        client.create_partitions(&a.topic, count)?;
    }
    if !configs.is_empty() {
        client
            .alter_configs(RESOURCE_TOPIC, &a.topic, &configs, &[])
            .map_err(|e| unsupported_alter(e, &a.common.bootstrap_server))?;
    }
    report_done(a.common.output, "altered", &a.topic)
}

/// Turns "IncrementalAlterConfigs unsupported" into a message that says what to do.
pub fn unsupported_alter(e: ClientError, bootstrap: &str) -> CliError {
    if is_unsupported(&e) {
        CliError::explained(
            format!(
                "the broker at {bootstrap} cannot change configs at run time: it does not implement IncrementalAlterConfigs"
            ),
            "set configs when creating the topic (`sluice topics create --config name=value`), or upgrade the broker",
        )
    } else {
        e.into()
    }
}

fn delete(a: DeleteArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let results = client.delete_topics(&a.topics)?;
    for (name, result) in &results {
        if result.is_ok() {
            report_done(a.common.output, "deleted", name)?;
        }
    }
    first_error(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_as_kafka_base64() {
        let id = uuid::Uuid::from_bytes([0xff; 16]);
        assert_eq!(kafka_uuid(&id), "_____________________w");
        assert_eq!(kafka_uuid(&uuid::Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    }
}
