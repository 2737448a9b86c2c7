//! `sluice groups list|describe|reset-offsets|delete`, like kafka-consumer-groups.sh.

use std::collections::{BTreeMap, BTreeSet};

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::client::Client;
use crate::client::admin::{GroupDescription, Offsets};
use crate::client::fetch::{EARLIEST, LATEST, READ_UNCOMMITTED};

use super::table::Table;
use super::{CliError, Common, Outcome, OutputFormat, first_error, print_json, time};

/// The `sluice groups` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List consumer groups on every broker.
    List(ListArgs),
    /// Members, assignments, committed offsets, log end offsets and lag.
    Describe(DescribeArgs),
    /// Move a group's committed offsets (dry run unless --execute).
    ResetOffsets(ResetArgs),
    /// Delete groups with no active members.
    Delete(DeleteArgs),
}

/// Arguments of `sluice groups list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `sluice groups describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Consumer group to describe.
    #[arg(long)]
    pub group: String,
    /// List members and their assignments instead of per-partition offsets.
    #[arg(long)]
    pub members: bool,
}

/// Arguments of `sluice groups reset-offsets`; exactly one --to-* option is required.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(
    ["to_earliest", "to_latest", "to_offset", "to_datetime"])))]
pub struct ResetArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Consumer group whose offsets to reset.
    #[arg(long)]
    pub group: String,
    /// Topics to reset (default: every topic the group has committed offsets for).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Reset to each partition's earliest offset (its log start).
    #[arg(long)]
    pub to_earliest: bool,
    /// Reset to each partition's latest offset (its log end).
    #[arg(long)]
    pub to_latest: bool,
    /// Reset every partition to this offset, clamped to the range the log holds.
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// ISO-8601, e.g. 2024-05-01T12:00:00Z (no zone means UTC).
    #[arg(long, value_name = "ISO8601")]
    pub to_datetime: Option<String>,
    /// Show the new offsets without committing them (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    pub execute: bool,
}

/// Arguments of `sluice groups delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Group to delete; repeat for several.
    #[arg(long = "group", required = true)]
    pub groups: Vec<String>,
}

/// Runs one `sluice groups` subcommand.
pub fn run(command: GroupsCommand) -> Result<(), CliError> {
    match command {
        GroupsCommand::List(a) => list(a),
        GroupsCommand::Describe(a) => describe(a),
        GroupsCommand::ResetOffsets(a) => reset(a),
        GroupsCommand::Delete(a) => delete(a),
    }
}

fn list(a: ListArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let groups = client.list_groups()?;
    match a.common.output {
        OutputFormat::Json => print_json(&groups),
        OutputFormat::Table => {
            let mut table = Table::new(&["GROUP", "TYPE", "PROTOCOL-TYPE", "STATE"]);
            for g in &groups {
                let state = g.state.clone().unwrap_or_else(|| "-".into());
                table.row(vec![
                    g.group.clone(),
                    g.group_type.clone(),
                    g.protocol_type.clone(),
                    state,
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

/// One row of `describe`: a partition the group commits to or is assigned.
#[derive(Debug, Serialize)]
struct LagRow {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    consumer_id: Option<String>,
    host: Option<String>,
    client_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct GroupReport {
    group: String,
    /// `classic` or `consumer` (KIP-848).
    group_type: String,
    state: String,
    /// Consumer groups: the group epoch and the target assignment's epoch, and the assignor.
    #[serde(skip_serializing_if = "Option::is_none")]
    group_epoch: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignment_epoch: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignor: Option<String>,
    coordinator: i32,
    members: Vec<MemberRow>,
    partitions: Vec<LagRow>,
}

/// One member and the partitions assigned to it.
#[derive(Debug, Serialize)]
struct MemberRow {
    consumer_id: String,
    host: String,
    client_id: String,
    assignment: BTreeMap<String, Vec<i32>>,
    /// The member's epoch (consumer groups only).
    #[serde(skip_serializing_if = "Option::is_none")]
    member_epoch: Option<i32>,
}

fn describe(a: DescribeArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let mut description = client.describe_group(&a.group)?;
    let mut committed = match description.group_type.as_str() {
        "share" => client.share_group_offsets(&a.group)?,
        _ => client.committed_offsets(&a.group, None)?,
    };
    if description.state == "Dead" && committed.is_empty() {
        // A share group without members is not held by its coordinator after a restart, but
        // its start offsets are.
        let starts = client.share_group_offsets(&a.group).unwrap_or_default();
        if !starts.is_empty() {
            description.group_type = "share".into();
            description.state = "Empty".into();
            committed = starts;
        }
    }
    if description.state == "Dead" && committed.is_empty() {
        return Err(CliError::usage(
            format!("consumer group '{}' does not exist", a.group),
            "list the groups with `sluice groups list`",
        ));
    }
    let rows = lag_rows(&mut client, &description, &committed)?;
    let consumer = description.epochs.is_some();
    let report = GroupReport {
        group: description.group.clone(),
        group_type: description.group_type.clone(),
        state: description.state.clone(),
        group_epoch: description.epochs.map(|(group, _)| group),
        assignment_epoch: description.epochs.map(|(_, assignment)| assignment),
        assignor: consumer.then(|| description.protocol.clone()),
        coordinator: description.coordinator,
        members: description
            .members
            .iter()
            .map(|m| MemberRow {
                consumer_id: m.member_id.clone(),
                host: m.client_host.clone(),
                client_id: m.client_id.clone(),
                assignment: m.assignment.clone(),
                member_epoch: m.member_epoch,
            })
            .collect(),
        partitions: rows,
    };
    match a.common.output {
        OutputFormat::Json => print_json(&report),
        OutputFormat::Table => {
            print_header(&report);
            if a.members {
                print_members(&report.members);
            } else {
                print_partitions(&report.partitions, report.group_type == "share");
            }
            Ok(())
        }
    }
}

fn lag_rows(
    client: &mut Client,
    description: &GroupDescription,
    committed: &Offsets,
) -> Result<Vec<LagRow>, CliError> {
    // Who owns each assigned partition.
    let mut owners = BTreeMap::new();
    for m in &description.members {
        for (topic, partitions) in &m.assignment {
            for p in partitions {
                owners.insert((topic.clone(), *p), m);
            }
        }
    }
    let keys: BTreeSet<(String, i32)> = committed.keys().chain(owners.keys()).cloned().collect();
    let log_end = log_end_offsets(client, &keys)?;
    Ok(keys
        .into_iter()
        .map(|key| {
            let current = committed.get(&key).copied();
            let end = log_end.get(&key).copied();
            let owner = owners.get(&key);
            LagRow {
                lag: current.zip(end).map(|(c, e)| (e - c).max(0)),
                current_offset: current,
                log_end_offset: end,
                consumer_id: owner.map(|m| m.member_id.clone()),
                host: owner.map(|m| m.client_host.clone()),
                client_id: owner.map(|m| m.client_id.clone()),
                topic: key.0,
                partition: key.1,
            }
        })
        .collect())
}

/// Latest offsets per (topic, partition); topics that vanished are left out.
fn log_end_offsets(
    client: &mut Client,
    keys: &BTreeSet<(String, i32)>,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in keys {
        by_topic.entry(t).or_default().push(*p);
    }
    let mut out = BTreeMap::new();
    for (topic, partitions) in by_topic {
        if client.topic(topic).is_err() {
            continue;
        }
        for (p, o) in client.list_offsets(topic, &partitions, LATEST, READ_UNCOMMITTED)? {
            out.insert((topic.to_string(), p), o);
        }
    }
    Ok(out)
}

fn dash(v: &Option<impl ToString>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

fn print_header(report: &GroupReport) {
    let epochs = match (report.group_epoch, report.assignment_epoch) {
        (Some(group), Some(assignment)) => format!(
            "  Type: {}  Epoch: {group}  Assignment epoch: {assignment}  Assignor: {}",
            report.group_type,
            report.assignor.as_deref().unwrap_or("-")
        ),
        _ => String::new(),
    };
    println!(
        "Group: {}{epochs}  State: {}  Coordinator: {}  Members: {}",
        report.group,
        report.state,
        report.coordinator,
        report.members.len()
    );
}

fn print_members(members: &[MemberRow]) {
    let mut table = Table::new(&[
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
        "EPOCH",
        "#PARTITIONS",
        "ASSIGNMENT",
    ]);
    for m in members {
        let count: usize = m.assignment.values().map(Vec::len).sum();
        let assignment: Vec<String> = m
            .assignment
            .iter()
            .map(|(t, ps)| {
                let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                format!("{t}({})", ps.join(","))
            })
            .collect();
        table.row(vec![
            m.consumer_id.clone(),
            m.host.clone(),
            m.client_id.clone(),
            dash(&m.member_epoch),
            count.to_string(),
            dash(&Some(assignment.join(" ")).filter(|s| !s.is_empty())),
        ]);
    }
    table.print();
}

/// A share group's offset column is its start offset: every record below it is
/// acknowledged or archived; records from it on may be in flight.
fn print_partitions(partitions: &[LagRow], share: bool) {
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        if share {
            "START-OFFSET"
        } else {
            "CURRENT-OFFSET"
        },
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    for r in partitions {
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            dash(&r.current_offset),
            dash(&r.log_end_offset),
            dash(&r.lag),
            dash(&r.consumer_id),
            dash(&r.host),
            dash(&r.client_id),
        ]);
    }
    table.print();
}

#[derive(Debug, Serialize)]
struct ResetRow {
    group: String,
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    new_offset: i64,
}

#[derive(Debug, Serialize)]
struct ResetReport {
    executed: bool,
    offsets: Vec<ResetRow>,
}

fn reset(a: ResetArgs) -> Result<(), CliError> {
    let target = reset_target(&a)?;
    let mut client = a.common.connect()?;
    let committed = client.committed_offsets(&a.group, None)?;
    let scope = reset_scope(&mut client, &a, &committed)?;
    let mut new_offsets = Offsets::new();
    for (topic, partitions) in &scope {
        for (p, o) in resolve(&mut client, topic, partitions, target)? {
            new_offsets.insert((topic.clone(), p), o);
        }
    }
    if a.execute {
        let description = client.describe_group(&a.group)?;
        if !description.members.is_empty() {
            return Err(CliError::usage(
                format!(
                    "group '{}' has {} active member(s); offsets can only be reset while it is empty",
                    a.group,
                    description.members.len()
                ),
                "stop the group's consumers, then run again with --execute",
            ));
        }
        client.commit_offsets(&a.group, &new_offsets)?;
    }
    let rows: Vec<ResetRow> = new_offsets
        .iter()
        .map(|((t, p), o)| ResetRow {
            group: a.group.clone(),
            topic: t.clone(),
            partition: *p,
            current_offset: committed.get(&(t.clone(), *p)).copied(),
            new_offset: *o,
        })
        .collect();
    match a.common.output {
        OutputFormat::Json => print_json(&ResetReport {
            executed: a.execute,
            offsets: rows,
        }),
        OutputFormat::Table => {
            let mut table = Table::new(&[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "NEW-OFFSET",
            ]);
            for r in &rows {
                table.row(vec![
                    r.group.clone(),
                    r.topic.clone(),
                    r.partition.to_string(),
                    dash(&r.current_offset),
                    r.new_offset.to_string(),
                ]);
            }
            table.print();
            if !a.execute {
                println!("(dry run: nothing was committed; add --execute to apply)");
            }
            Ok(())
        }
    }
}

/// Where to move offsets.
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
}

fn reset_target(a: &ResetArgs) -> Result<Target, CliError> {
    if a.to_earliest {
        return Ok(Target::Earliest);
    }
    if a.to_latest {
        return Ok(Target::Latest);
    }
    if let Some(o) = a.to_offset {
        if o < 0 {
            return Err(CliError::usage(
                format!("--to-offset {o} is negative"),
                "use --to-earliest or a non-negative offset",
            ));
        }
        return Ok(Target::Offset(o));
    }
    let text = a.to_datetime.as_deref().unwrap_or_default();
    time::parse_iso8601(text)
        .map(Target::Timestamp)
        .ok_or_else(|| {
            CliError::usage(
                format!("invalid --to-datetime '{text}'"),
                "use ISO-8601 such as 2024-05-01T12:00:00Z or 2024-05-01T12:00:00.000+02:00",
            )
        })
}

/// Topic -> partitions to reset: every partition of each --topic, or of every topic the
/// group has committed to.
fn reset_scope(
    client: &mut Client,
    a: &ResetArgs,
    committed: &Offsets,
) -> Result<BTreeMap<String, Vec<i32>>, CliError> {
    let topics: BTreeSet<String> = if a.topics.is_empty() {
        committed.keys().map(|(t, _)| t.clone()).collect()
    } else {
        a.topics.iter().cloned().collect()
    };
    if topics.is_empty() {
        return Err(CliError::usage(
            format!("group '{}' has no committed offsets to reset", a.group),
            "name the topics with --topic T",
        ));
    }
    let mut scope = BTreeMap::new();
    for t in topics {
        let info = client.topic(&t)?;
        scope.insert(t, info.partitions.iter().map(|p| p.partition).collect());
    }
    Ok(scope)
}

/// New offsets for one topic, clamped to the log as Kafka's tool does.
fn resolve(
    client: &mut Client,
    topic: &str,
    partitions: &[i32],
    target: Target,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let earliest = client.list_offsets(topic, partitions, EARLIEST, READ_UNCOMMITTED)?;
    let latest = client.list_offsets(topic, partitions, LATEST, READ_UNCOMMITTED)?;
    let wanted = match target {
        Target::Earliest => earliest.clone(),
        Target::Latest => latest.clone(),
        Target::Offset(o) => partitions.iter().map(|p| (*p, o)).collect(),
        // No record at or after the time: the end of the log.
        Target::Timestamp(ts) => client
            .list_offsets(topic, partitions, ts, READ_UNCOMMITTED)?
            .into_iter()
            .map(|(p, o)| {
                (
                    p,
                    if o < 0 {
                        latest.get(&p).copied().unwrap_or(0)
                    } else {
                        o
                    },
                )
            })
            .collect(),
    };
    Ok(wanted
        .into_iter()
        .map(|(p, o)| {
            let lo = earliest.get(&p).copied().unwrap_or(0);
            let hi = latest.get(&p).copied().unwrap_or(o);
            (p, o.clamp(lo, hi.max(lo)))
        })
        .collect())
}

fn delete(a: DeleteArgs) -> Result<(), CliError> {
    let mut client = a.common.connect()?;
    let results = client.delete_groups(&a.groups)?;
    for (group, result) in &results {
        if result.is_ok() {
            match a.common.output {
                OutputFormat::Table => println!("Deleted group {group}."),
                OutputFormat::Json => Outcome {
                    resource: "group",
                    name: group,
                    result: "deleted",
                }
                .print()?,
            }
        }
    }
    first_error(results)
}
