//! `sluice consume --topic T`, like kafka-console-consumer.sh. Without `--group` it assigns
//! itself every partition (or `--partition`) and fetches directly; with `--group` it starts
//! from the group's committed offsets (FindCoordinator + OffsetFetch) and commits what it
//! consumed on exit (OffsetCommit as a standalone committer; no JoinGroup membership).
//! Exits 0 after `--max-messages`, after `--timeout-ms` without a new record, or on Ctrl-C.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use kafka_protocol::ResponseError;

use crate::client::Client;
use crate::client::admin::Offsets;
use crate::client::cluster::TopicInfo;
use crate::client::fetch::{ConsumedRecord, EARLIEST, LATEST, READ_COMMITTED, READ_UNCOMMITTED};

use super::{CliError, Common, OutputFormat, show_bytes};

/// Longest long-poll per fetch; short so Ctrl-C and timeouts are noticed promptly.
const MAX_WAIT_MS: i32 = 500;

/// Which records of transactions to read (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions.
    ReadUncommitted,
    /// Only committed transactions' records, up to the last stable offset.
    ReadCommitted,
}

/// Arguments of `sluice consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Start at the earliest offset when there is no committed or explicit offset.
    #[arg(long)]
    pub from_beginning: bool,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start offset for --partition: a number, earliest or latest.
    #[arg(long, requires = "partition")]
    pub offset: Option<String>,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<usize>,
    /// Consumer group: start from its committed offsets and commit on exit.
    #[arg(long)]
    pub group: Option<String>,
    /// Print each record's key before its value, tab-separated.
    #[arg(long)]
    pub print_key: bool,
    /// Print each record's headers as name:value,... (NO_HEADERS when it has none).
    #[arg(long)]
    pub print_headers: bool,
    /// Print each record's offset (Offset:N).
    #[arg(long)]
    pub print_offset: bool,
    /// Print each record's partition (Partition:N).
    #[arg(long)]
    pub print_partition: bool,
    /// Print each record's timestamp type and epoch milliseconds (CreateTime:N).
    #[arg(long)]
    pub print_timestamp: bool,
    /// Transaction isolation: read-committed skips aborted records and stops before open
    /// transactions.
    #[arg(long, value_enum, default_value_t = IsolationLevel::ReadUncommitted)]
    pub isolation_level: IsolationLevel,
    /// Exit when no record arrives for this long.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

/// Set by SIGINT/SIGTERM so the loop can commit and exit cleanly.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Runs `sluice consume`: prints records until --max-messages, --timeout-ms or Ctrl-C, then
/// commits the positions reached when --group is given.
pub fn run(args: ConsumeArgs) -> Result<(), CliError> {
    let mut client = args.common.connect()?;
    let topic = client.topic(&args.topic)?;
    let partitions = chosen_partitions(&args, &topic)?;
    let isolation = match args.isolation_level {
        IsolationLevel::ReadUncommitted => READ_UNCOMMITTED,
        IsolationLevel::ReadCommitted => READ_COMMITTED,
    };
    let mut positions = start_positions(&mut client, &args, &partitions, isolation)?;
    install_signal_handlers();
    let consumed = consume_loop(&mut client, &args, &topic, &mut positions, isolation)?;
    if let Some(group) = &args.group {
        let offsets: Offsets = positions
            .iter()
            .map(|(p, o)| ((args.topic.clone(), *p), *o))
            .collect();
        client.commit_offsets(group, &offsets)?;
    }
    eprintln!("Processed a total of {consumed} messages");
    Ok(())
}

fn chosen_partitions(args: &ConsumeArgs, topic: &TopicInfo) -> Result<Vec<i32>, CliError> {
    let all: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    match args.partition {
        None => Ok(all),
        Some(p) if all.contains(&p) => Ok(vec![p]),
        Some(p) => Err(CliError::usage(
            format!("topic '{}' has no partition {p}", args.topic),
            format!("partitions are 0..{}", all.len().saturating_sub(1)),
        )),
    }
}

/// Explicit --offset, else the group's commit, else earliest/latest per --from-beginning.
fn start_positions(
    client: &mut Client,
    args: &ConsumeArgs,
    partitions: &[i32],
    isolation: i8,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let default_reset = if args.from_beginning {
        EARLIEST
    } else {
        LATEST
    };
    if let Some(text) = &args.offset {
        let offset = match text.as_str() {
            "earliest" => EARLIEST,
            "latest" => LATEST,
            n => n.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| {
                CliError::usage(
                    format!("invalid --offset '{n}'"),
                    "use a non-negative number, earliest or latest",
                )
            })?,
        };
        if offset >= 0 {
            return Ok(partitions.iter().map(|p| (*p, offset)).collect());
        }
        return Ok(client.list_offsets(&args.topic, partitions, offset, isolation)?);
    }
    let mut positions = BTreeMap::new();
    if let Some(group) = &args.group {
        let wanted = BTreeMap::from([(args.topic.clone(), partitions.to_vec())]);
        for ((_, p), o) in client.committed_offsets(group, Some(&wanted))? {
            positions.insert(p, o);
        }
    }
    let missing: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|p| !positions.contains_key(p))
        .collect();
    if !missing.is_empty() {
        positions.extend(client.list_offsets(&args.topic, &missing, default_reset, isolation)?);
    }
    Ok(positions)
}

fn consume_loop(
    client: &mut Client,
    args: &ConsumeArgs,
    topic: &TopicInfo,
    positions: &mut BTreeMap<i32, i64>,
    isolation: i8,
) -> Result<usize, CliError> {
    let mut topic = topic.clone();
    let mut consumed = 0usize;
    let mut last_progress = Instant::now();
    let max = args.max_messages.unwrap_or(usize::MAX);
    while consumed < max && !STOP.load(Ordering::SeqCst) {
        let wait_ms = match args.timeout_ms {
            Some(t) => {
                let left = Duration::from_millis(t).saturating_sub(last_progress.elapsed());
                if left.is_zero() {
                    break;
                }
                (left.as_millis() as i32).clamp(1, MAX_WAIT_MS)
            }
            None => MAX_WAIT_MS,
        };
        let fetched = client.fetch(&topic, positions, isolation, wait_ms)?;
        let mut stale_metadata = false;
        for partition in fetched {
            match partition.error {
                None => {}
                Some(ResponseError::OffsetOutOfRange) => {
                    reset_out_of_range(client, args, partition.partition, positions, isolation)?;
                    continue;
                }
                Some(e) if e.is_retriable() || e == ResponseError::NotLeaderOrFollower => {
                    stale_metadata = true;
                    continue;
                }
                Some(e) => {
                    return Err(crate::client::ClientError::Broker {
                        context: format!("fetching {}-{}", args.topic, partition.partition),
                        error: e,
                        message: None,
                    }
                    .into());
                }
            }
            for record in partition.records {
                if consumed >= max {
                    break;
                }
                print_record(args, &record)?;
                consumed += 1;
                last_progress = Instant::now();
                positions.insert(record.partition, record.offset + 1);
            }
            // Past control batches and filtered records too, unless we stopped early.
            if consumed < max {
                let pos = positions.entry(partition.partition).or_insert(0);
                *pos = (*pos).max(partition.next_offset);
            }
        }
        if stale_metadata {
            topic = client.topic(&args.topic)?;
        }
    }
    Ok(consumed)
}

/// auto.offset.reset: earliest with --from-beginning, latest otherwise, as Kafka's console
/// consumer does; said on stderr so it is never silent.
fn reset_out_of_range(
    client: &mut Client,
    args: &ConsumeArgs,
    partition: i32,
    positions: &mut BTreeMap<i32, i64>,
    isolation: i8,
) -> Result<(), CliError> {
    let (to, name) = if args.from_beginning {
        (EARLIEST, "earliest")
    } else {
        (LATEST, "latest")
    };
    let reset = client.list_offsets(&args.topic, &[partition], to, isolation)?;
    let offset = reset.get(&partition).copied().unwrap_or(0);
    eprintln!(
        "sluice: offset {} of {}-{partition} is out of range; resetting to {name} ({offset})",
        positions.get(&partition).copied().unwrap_or(-1),
        args.topic
    );
    positions.insert(partition, offset);
    Ok(())
}

fn print_record(args: &ConsumeArgs, r: &ConsumedRecord) -> Result<(), CliError> {
    use std::io::Write;
    let line = match args.common.output {
        OutputFormat::Json => serde_json::to_string(&record_json(r))?,
        OutputFormat::Table => record_text(args, r),
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) ends the consumer quietly rather than with a panic.
    if writeln!(out, "{line}").is_err() {
        STOP.store(true, Ordering::SeqCst);
    }
    Ok(())
}

/// kafka-console-consumer's DefaultMessageFormatter order: timestamp, partition, offset,
/// headers, key, value, tab-separated.
fn record_text(args: &ConsumeArgs, r: &ConsumedRecord) -> String {
    let mut fields = Vec::new();
    if args.print_timestamp {
        let kind = if r.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        };
        fields.push(format!("{kind}:{}", r.timestamp));
    }
    if args.print_partition {
        fields.push(format!("Partition:{}", r.partition));
    }
    if args.print_offset {
        fields.push(format!("Offset:{}", r.offset));
    }
    if args.print_headers {
        fields.push(headers_text(&r.headers));
    }
    if args.print_key {
        fields.push(show_bytes(r.key.as_deref()));
    }
    fields.push(show_bytes(r.value.as_deref()));
    fields.join("\t")
}

fn headers_text(headers: &[(String, Option<Vec<u8>>)]) -> String {
    if headers.is_empty() {
        return "NO_HEADERS".to_string();
    }
    headers
        .iter()
        .map(|(k, v)| format!("{k}:{}", show_bytes(v.as_deref())))
        .collect::<Vec<_>>()
        .join(",")
}

/// One record as a JSON line; bytes shown as UTF-8 (lossily), null when absent.
#[derive(serde::Serialize)]
struct RecordJson {
    partition: i32,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<HeaderJson>,
}

#[derive(serde::Serialize)]
struct HeaderJson {
    key: String,
    value: Option<String>,
}

fn text(bytes: &Option<Vec<u8>>) -> Option<String> {
    bytes
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn record_json(r: &ConsumedRecord) -> RecordJson {
    RecordJson {
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        timestamp_type: if r.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        },
        key: text(&r.key),
        value: text(&r.value),
        headers: r
            .headers
            .iter()
            .map(|(k, v)| HeaderJson {
                key: k.clone(),
                value: text(v),
            })
            .collect(),
    }
}
