//! `sluice produce --topic T`: one record per stdin line, like kafka-console-producer.sh.
//! Lines are batched per partition (up to [`BATCH_RECORDS`] records or [`BATCH_BYTES`])
//! and sent when a batch fills or stdin ends.

use std::collections::BTreeMap;
use std::io::BufRead;

use clap::Args;
use serde::Serialize;

use crate::client::Client;
use crate::client::cluster::TopicInfo;
use crate::client::produce::{Headers, ProducerRecord, partition_for_key};
use crate::protocol::record_batch::Compression;

use super::table::Table;
use super::{CliError, Common, OutputFormat, parse_key_values, print_json};

/// Records per batch before it is sent.
const BATCH_RECORDS: usize = 1_000;
/// Payload bytes per batch before it is sent (well under the default message.max.bytes).
const BATCH_BYTES: usize = 512 * 1024;

/// Arguments of `sluice produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Bootstrap server, output format and client properties.
    #[command(flatten)]
    pub common: Common,
    /// Topic to write to.
    #[arg(long)]
    pub topic: String,
    /// Split each line at the first SEP into key and value (parse.key=true, key.separator).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Headers added to every record: k=v,k2=v2.
    #[arg(long, value_name = "K=V,...")]
    pub headers: Option<String>,
    /// Send every record to this partition (default: by key hash, else round-robin per batch).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgements: all (-1), 1 or 0.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
    /// Compression codec of the batches: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_codec)]
    pub compression: Compression,
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        other => Err(format!("'{other}' is not one of all, -1, 0, 1")),
    }
}

/// Codec names as Kafka's compression.type spells them.
pub fn parse_codec(text: &str) -> Result<Compression, String> {
    match text {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!(
            "'{other}' is not one of none, gzip, snappy, lz4, zstd"
        )),
    }
}

/// What was sent to one partition.
#[derive(Debug, Default, Serialize)]
struct PartitionSummary {
    records: usize,
    /// First offset the broker assigned; absent with acks=0.
    first_offset: Option<i64>,
}

/// Pending records per partition and where round-robin goes next.
struct Batcher<'a> {
    client: &'a mut Client,
    args: &'a ProduceArgs,
    topic: TopicInfo,
    pending: BTreeMap<i32, (Vec<ProducerRecord>, usize)>,
    summary: BTreeMap<i32, PartitionSummary>,
    next_partition: usize,
}

/// Runs `sluice produce`: sends stdin's lines as records, then prints how many went to each
/// partition and the first offset each got.
pub fn run(args: ProduceArgs) -> Result<(), CliError> {
    let headers = parse_headers(args.headers.as_deref())?;
    let mut client = args.common.connect()?;
    let topic = client.topic(&args.topic)?;
    if let Some(p) = args.partition
        && !topic.partitions.iter().any(|i| i.partition == p)
    {
        return Err(CliError::usage(
            format!("topic '{}' has no partition {p}", args.topic),
            format!(
                "partitions are 0..{}; add more with `sluice topics alter --partitions`",
                topic.partitions.len().saturating_sub(1)
            ),
        ));
    }
    let mut batcher = Batcher {
        client: &mut client,
        args: &args,
        next_partition: crate::now_ms().unsigned_abs() as usize,
        topic,
        pending: BTreeMap::new(),
        summary: BTreeMap::new(),
    };
    let stdin = std::io::stdin();
    for (number, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| CliError::io("reading stdin", e))?;
        let record = parse_line(&line, number + 1, args.key_separator.as_deref(), &headers)?;
        batcher.add(record)?;
    }
    batcher.flush_all()?;
    print_summary(args.common.output, &args.topic, &batcher.summary)
}

fn parse_headers(text: Option<&str>) -> Result<Headers, CliError> {
    Ok(text
        .map(|t| parse_key_values(t, "--headers"))
        .transpose()?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Some(v.into_bytes())))
        .collect())
}

fn parse_line(
    line: &str,
    number: usize,
    separator: Option<&str>,
    headers: &Headers,
) -> Result<ProducerRecord, CliError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (key, value) = match separator {
        None => (None, line),
        Some(sep) => match line.split_once(sep) {
            Some((k, v)) => (Some(k.as_bytes().to_vec()), v),
            None => {
                return Err(CliError::usage(
                    format!("no key separator '{sep}' on line {number}"),
                    "every line needs KEY<sep>VALUE when --key-separator is given",
                ));
            }
        },
    };
    Ok(ProducerRecord {
        key,
        value: Some(value.as_bytes().to_vec()),
        headers: headers.clone(),
        timestamp_ms: crate::now_ms(),
    })
}

impl Batcher<'_> {
    fn partition_of(&mut self, record: &ProducerRecord) -> i32 {
        let count = self.topic.partitions.len().max(1);
        if let Some(p) = self.args.partition {
            return p;
        }
        match &record.key {
            Some(key) => partition_for_key(key, count as i32),
            // Sticky: unkeyed records fill one partition's batch, then move on.
            None => self.topic.partitions[self.next_partition % count].partition,
        }
    }

    fn add(&mut self, record: ProducerRecord) -> Result<(), CliError> {
        let partition = self.partition_of(&record);
        let size = record.key.as_ref().map_or(0, Vec::len)
            + record.value.as_ref().map_or(0, Vec::len)
            + 16;
        let (records, bytes) = self.pending.entry(partition).or_default();
        records.push(record);
        *bytes += size;
        if records.len() >= BATCH_RECORDS || *bytes >= BATCH_BYTES {
            self.flush(partition)?;
            self.next_partition = self.next_partition.wrapping_add(1);
        }
        Ok(())
    }

    fn flush(&mut self, partition: i32) -> Result<(), CliError> {
        let Some((records, _)) = self.pending.remove(&partition) else {
            return Ok(());
        };
        let base = self.client.produce(
            &self.args.topic,
            partition,
            &records,
            self.args.acks,
            self.args.compression,
        )?;
        let summary = self.summary.entry(partition).or_default();
        summary.records += records.len();
        summary.first_offset = summary.first_offset.or(base);
        Ok(())
    }

    fn flush_all(&mut self) -> Result<(), CliError> {
        let partitions: Vec<i32> = self.pending.keys().copied().collect();
        partitions.into_iter().try_for_each(|p| self.flush(p))
    }
}

#[derive(Serialize)]
struct ProduceReport<'a> {
    topic: &'a str,
    records: usize,
    partitions: &'a BTreeMap<i32, PartitionSummary>,
}

fn print_summary(
    output: OutputFormat,
    topic: &str,
    summary: &BTreeMap<i32, PartitionSummary>,
) -> Result<(), CliError> {
    let total: usize = summary.values().map(|s| s.records).sum();
    match output {
        OutputFormat::Json => print_json(&ProduceReport {
            topic,
            records: total,
            partitions: summary,
        }),
        OutputFormat::Table => {
            let mut table = Table::new(&["PARTITION", "RECORDS", "FIRST-OFFSET"]);
            for (p, s) in summary {
                let first = s.first_offset.map_or("-".to_string(), |o| o.to_string());
                table.row(vec![p.to_string(), s.records.to_string(), first]);
            }
            table.print();
            Ok(())
        }
    }
}
