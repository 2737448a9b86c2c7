//! `sluice dump-log FILE...`: prints segment (`.log`), offset index (`.index`) and time index
//! (`.timeindex`) files in kafka-dump-log.sh's style, reading files only (no broker). Files
//! are opened read-only: a dump never repairs or truncates what it inspects.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::protocol::record_batch::{BatchIter, BatchView};
use crate::protocol::records::{Record, decode_records};
use crate::storage::index::{IndexEntry, OffsetEntry, TimeEntry};

use super::{CliError, OutputFormat, print_json, show_bytes};

/// Arguments of `sluice dump-log`.
#[derive(Debug, Args)]
pub struct DumpLogArgs {
    /// Segment or index files: *.log, *.index, *.timeindex.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print every record with its key, value and headers.
    #[arg(long)]
    pub print_data_log: bool,
    /// Print every record's metadata (implied by --print-data-log).
    #[arg(long)]
    pub deep_iteration: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// One dumped file.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Dump {
    Log {
        file: String,
        base_offset: u64,
        batches: Vec<BatchDump>,
        invalid_bytes: usize,
    },
    OffsetIndex {
        file: String,
        entries: Vec<OffsetIndexEntry>,
    },
    TimeIndex {
        file: String,
        entries: Vec<TimeIndexEntry>,
    },
}

#[derive(Debug, Serialize)]
struct BatchDump {
    base_offset: i64,
    last_offset: i64,
    count: i32,
    base_sequence: i32,
    last_sequence: i32,
    producer_id: i64,
    producer_epoch: i16,
    partition_leader_epoch: i32,
    is_transactional: bool,
    is_control: bool,
    position: usize,
    timestamp_type: &'static str,
    max_timestamp: i64,
    size: usize,
    magic: i8,
    compression: String,
    crc: u32,
    is_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Vec<RecordDump>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct RecordDump {
    offset: i64,
    timestamp: i64,
    key_size: i64,
    value_size: i64,
    sequence: i32,
    header_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<(String, Option<String>)>>,
}

#[derive(Debug, Serialize)]
struct OffsetIndexEntry {
    offset: i64,
    position: u32,
}

#[derive(Debug, Serialize)]
struct TimeIndexEntry {
    timestamp: i64,
    offset: i64,
}

/// Dumps each file in turn; with JSON output, prints them all as one array at the end.
pub fn run(args: DumpLogArgs) -> Result<(), CliError> {
    let mut dumps = Vec::new();
    for file in &args.files {
        let dump = dump_file(file, &args)?;
        if args.output == OutputFormat::Table {
            print_dump(&dump);
        }
        dumps.push(dump);
    }
    if args.output == OutputFormat::Json {
        print_json(&dumps)?;
    }
    Ok(())
}

fn dump_file(path: &Path, args: &DumpLogArgs) -> Result<Dump, CliError> {
    let name = path.display().to_string();
    let base_offset = base_offset_of(path)?;
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::usage(
            format!("cannot read {name}: {e}"),
            "pass segment files such as <data-dir>/<topic>-<partition>/00000000000000000000.log",
        )
    })?;
    let records = args.print_data_log || args.deep_iteration;
    match path.extension().and_then(|e| e.to_str()) {
        Some("log") => Ok(dump_log(
            name,
            base_offset,
            &bytes,
            records,
            args.print_data_log,
        )),
        Some("index") => Ok(Dump::OffsetIndex {
            file: name,
            entries: read_entries::<OffsetEntry>(&bytes)
                .into_iter()
                .map(|e| OffsetIndexEntry {
                    offset: base_offset as i64 + i64::from(e.relative_offset),
                    position: e.position,
                })
                .collect(),
        }),
        Some("timeindex") => Ok(Dump::TimeIndex {
            file: name,
            entries: read_entries::<TimeEntry>(&bytes)
                .into_iter()
                .map(|e| TimeIndexEntry {
                    timestamp: e.timestamp,
                    offset: base_offset as i64 + i64::from(e.relative_offset),
                })
                .collect(),
        }),
        _ => Err(CliError::usage(
            format!("{name}: not a .log, .index or .timeindex file"),
            "dump-log reads Kafka segment files (<base offset>.log|.index|.timeindex)",
        )),
    }
}

/// Segment files are named by their base offset, zero-padded to 20 digits.
fn base_offset_of(path: &Path) -> Result<u64, CliError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            CliError::usage(
                format!("{}: the file name is not a base offset", path.display()),
                "segment files are named like 00000000000000000000.log",
            )
        })
}

/// Index entries up to the first that is out of order or zero-filled (Kafka preallocates
/// index files with zeros), as the broker itself loads them.
fn read_entries<E: IndexEntry>(bytes: &[u8]) -> Vec<E> {
    let mut out: Vec<E> = Vec::new();
    for chunk in bytes.chunks_exact(E::SIZE) {
        let entry = E::decode(chunk);
        let zero = chunk.iter().all(|b| *b == 0) && !out.is_empty();
        let sorted = out.last().is_none_or(|last| entry.key() > last.key());
        if zero || !sorted {
            break;
        }
        out.push(entry);
    }
    out
}

fn dump_log(name: String, base_offset: u64, bytes: &[u8], records: bool, data: bool) -> Dump {
    let mut batches = Vec::new();
    let mut position = 0usize;
    for view in BatchIter::new(bytes, false) {
        // Parsing (not validation) failed: the rest of the file is not a batch.
        let Ok(view) = view else { break };
        batches.push(dump_batch(&view, position, records, data));
        position += view.total_size();
    }
    Dump::Log {
        file: name,
        base_offset,
        batches,
        invalid_bytes: bytes.len() - position,
    }
}

fn dump_batch(view: &BatchView<'_>, position: usize, records: bool, data: bool) -> BatchDump {
    let is_valid = view.validate().is_ok();
    let base_sequence = view.base_sequence();
    let mut error = None;
    let records = records
        .then(|| match decode_records(view) {
            Ok(rs) => Some(rs.iter().map(|r| dump_record(view, r, data)).collect()),
            Err(e) => {
                error = Some(format!("cannot decode records: {e}"));
                None
            }
        })
        .flatten();
    BatchDump {
        base_offset: view.base_offset(),
        last_offset: view.last_offset(),
        count: view.record_count(),
        base_sequence,
        last_sequence: sequence_at(base_sequence, view.last_offset_delta()),
        producer_id: view.producer_id(),
        producer_epoch: view.producer_epoch(),
        partition_leader_epoch: view.partition_leader_epoch(),
        is_transactional: view.is_transactional(),
        is_control: view.is_control(),
        position,
        timestamp_type: timestamp_type(view),
        max_timestamp: view.max_timestamp(),
        size: view.total_size(),
        magic: view.magic(),
        compression: view
            .compression()
            .map_or_else(|e| e.to_string(), |c| c.name().to_string()),
        crc: view.crc(),
        is_valid,
        records,
        error,
    }
}

fn timestamp_type(view: &BatchView<'_>) -> &'static str {
    if view.is_log_append_time() {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

/// Sequence numbers wrap at i32::MAX as Kafka's do; -1 means "not idempotent".
fn sequence_at(base: i32, delta: i32) -> i32 {
    if base < 0 {
        -1
    } else {
        ((i64::from(base) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
    }
}

fn dump_record(view: &BatchView<'_>, r: &Record, data: bool) -> RecordDump {
    let timestamp = if view.is_log_append_time() {
        view.max_timestamp()
    } else {
        view.base_timestamp() + r.timestamp_delta
    };
    let text = |b: &Option<Vec<u8>>| b.as_deref().map(|b| show_bytes(Some(b)));
    RecordDump {
        offset: view.base_offset() + i64::from(r.offset_delta),
        timestamp,
        key_size: r.key.as_ref().map_or(-1, |k| k.len() as i64),
        value_size: r.value.as_ref().map_or(-1, |v| v.len() as i64),
        sequence: sequence_at(view.base_sequence(), r.offset_delta),
        header_keys: r.headers.iter().map(|(k, _)| k.clone()).collect(),
        control: view.is_control().then(|| control_text(r)),
        key: data.then(|| text(&r.key)),
        payload: data.then(|| text(&r.value)),
        headers: data.then(|| {
            r.headers
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect()
        }),
    }
}

/// A control record's key is (version i16, type i16: 0 abort, 1 commit); its value is
/// (version i16, coordinator epoch i32).
fn control_text(r: &Record) -> String {
    let i16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| i16::from_be_bytes([s[0], s[1]]));
    let kind = r.key.as_deref().and_then(|k| i16_at(k, 2));
    let epoch = r
        .value
        .as_deref()
        .and_then(|v| v.get(2..6))
        .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    let marker = match kind {
        Some(0) => "ABORT".to_string(),
        Some(1) => "COMMIT".to_string(),
        Some(other) => format!("UNKNOWN({other})"),
        None => "UNKNOWN".to_string(),
    };
    match epoch {
        Some(e) => format!("endTxnMarker: {marker} coordinatorEpoch: {e}"),
        None => format!("endTxnMarker: {marker}"),
    }
}

fn print_dump(dump: &Dump) {
    match dump {
        Dump::Log {
            file,
            base_offset,
            batches,
            invalid_bytes,
        } => {
            println!("Dumping {file}");
            println!("Log starting offset: {base_offset}");
            for b in batches {
                print_batch(b);
            }
            if *invalid_bytes > 0 {
                println!("Found {invalid_bytes} invalid bytes at the end of {file}");
            }
        }
        Dump::OffsetIndex { file, entries } => {
            println!("Dumping {file}");
            for e in entries {
                println!("offset: {} position: {}", e.offset, e.position);
            }
        }
        Dump::TimeIndex { file, entries } => {
            println!("Dumping {file}");
            for e in entries {
                println!("timestamp: {} offset: {}", e.timestamp, e.offset);
            }
        }
    }
}

fn print_batch(b: &BatchDump) {
    println!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} position: {} {}: {} size: {} magic: {} compresscodec: {} crc: {} \
         isvalid: {}",
        b.base_offset,
        b.last_offset,
        b.count,
        b.base_sequence,
        b.last_sequence,
        b.producer_id,
        b.producer_epoch,
        b.partition_leader_epoch,
        b.is_transactional,
        b.is_control,
        b.position,
        b.timestamp_type,
        b.max_timestamp,
        b.size,
        b.magic,
        b.compression,
        b.crc,
        b.is_valid
    );
    if let Some(e) = &b.error {
        println!("| {e}");
    }
    for r in b.records.iter().flatten() {
        print_record(r, b.timestamp_type);
    }
}

fn print_record(r: &RecordDump, timestamp_type: &str) {
    let mut line = format!(
        "| offset: {} {timestamp_type}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
        r.offset,
        r.timestamp,
        r.key_size,
        r.value_size,
        r.sequence,
        r.header_keys.join(",")
    );
    if let Some(control) = &r.control {
        line.push(' ');
        line.push_str(control);
    } else if let (Some(key), Some(payload)) = (&r.key, &r.payload) {
        if let Some(headers) = &r.headers {
            let shown: Vec<String> = headers
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
                .collect();
            line.push_str(&format!(" headers: [{}]", shown.join(",")));
        }
        line.push_str(&format!(
            " key: {} payload: {}",
            key.as_deref().unwrap_or("null"),
            payload.as_deref().unwrap_or("null")
        ));
    }
    println!("{line}");
}
