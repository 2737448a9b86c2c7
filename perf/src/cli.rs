//! Command-line flags and the small value types they parse into.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Open-loop load generator for Kafka-compatible brokers.
///
/// Every message has an intended send time taken from the target rate; latency is measured from
/// that intended time, so a broker that falls behind cannot hide its queueing (no coordinated
/// omission). Without `--bootstrap-server` it starts an embedded `sluice serve` on a temp dir.
#[derive(Parser, Debug, Clone, Serialize)]
#[command(name = "sluice-perf", version)]
pub struct Args {
    /// What to measure: produce only, consume only, or produce-to-consume latency.
    #[arg(long, value_enum, default_value_t = Scenario::Produce)]
    pub scenario: Scenario,

    /// Broker to load (host:port). Absent: start an embedded Sluice and load it.
    #[arg(long)]
    pub bootstrap_server: Option<String>,

    /// Target rate in messages/s over all producers, or `max` for no pacing (closed loop:
    /// latencies are then measured from the send call and only throughput is meaningful).
    #[arg(long, default_value = "10000")]
    pub rate: Rate,

    /// Run once per rate in this comma-separated list (overrides `--rate`).
    #[arg(long, value_delimiter = ',')]
    pub sweep: Option<Vec<Rate>>,

    /// Record value size in bytes (used by `--size-dist fixed`).
    #[arg(long, default_value_t = 1024)]
    pub message_size: usize,

    /// Record value size distribution: `fixed` or `uniform:MIN-MAX`.
    #[arg(long, default_value = "fixed")]
    pub size_dist: SizeDist,

    /// Record keys: `none`, `random` (8 random bytes), or `hot:N` (one of N keys).
    #[arg(long, default_value = "none")]
    pub keys: KeyDist,

    /// Topic name; created with `--partitions` if it does not exist. Default: a fresh name.
    #[arg(long)]
    pub topic: Option<String>,

    /// Partitions of the topic when this tool creates it.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,

    /// Producer clients; the rate is split evenly between them.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,

    /// Consumer clients; partitions are assigned round-robin (no consumer group).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,

    /// Where the consume scenario starts: the earliest offset or the end of each partition.
    #[arg(long = "from", value_enum, default_value_t = StartAt::Start)]
    pub from: StartAt,

    /// Producer acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: Acks,

    /// Producer compression.type: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,

    /// Producer batch.size in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: usize,

    /// Producer linger.ms (librdkafka takes fractions, e.g. 0.2).
    #[arg(long, default_value_t = 5.0)]
    pub linger_ms: f64,

    /// Seconds of load before measuring starts (not recorded).
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,

    /// Seconds of measured load per rate.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,

    /// Seconds to wait for outstanding acks / records after the load stops.
    #[arg(long, default_value_t = 30)]
    pub drain_secs: u64,

    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write HdrHistogram percentile distributions (.hgrm) into this directory.
    #[arg(long)]
    pub hgrm_dir: Option<PathBuf>,

    /// `sluice` binary for the embedded broker. Default: `sluice` next to this executable.
    #[arg(long)]
    pub sluice_bin: Option<PathBuf>,

    /// Cores (shards) of the embedded broker.
    #[arg(long, default_value_t = 1)]
    pub sluice_cores: usize,

    /// The client: `rdkafka` (librdkafka, what applications use) or `wire` (this tool's own
    /// lean Kafka protocol client, one thread per connection: measures the broker without a
    /// client library's thread hand-offs; produce and e2e scenarios, paced rate, no
    /// compression, single-node brokers).
    #[arg(long, value_enum, default_value_t = Client::Rdkafka)]
    pub client: Client,

    /// Extra librdkafka properties for every client, `key=value` (repeatable).
    #[arg(long = "client-prop", value_name = "KEY=VALUE")]
    pub client_props: Vec<String>,

    /// Only create the topic (and wait until it has leaders), then exit: for other tools.
    #[arg(long)]
    pub create_only: bool,

    /// No progress line every second.
    #[arg(long)]
    pub quiet: bool,
}

impl Args {
    /// The rates to run, in order.
    pub fn rates(&self) -> Vec<Rate> {
        self.sweep.clone().unwrap_or_else(|| vec![self.rate])
    }

    /// Parsed `--client-prop` pairs.
    pub fn client_props(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.client_props
            .iter()
            .map(|kv| {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--client-prop {kv:?}: expected KEY=VALUE"))?;
                Ok((k.to_string(), v.to_string()))
            })
            .collect()
    }

    /// Rejects combinations that would measure nothing or measure the wrong thing.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.producers == 0 || self.consumers == 0 {
            bail!("--producers and --consumers must be at least 1");
        }
        if self.partitions < 1 {
            bail!("--partitions must be at least 1");
        }
        if self.scenario == Scenario::E2e && self.size_dist.min(self.message_size) < HEADER_LEN {
            bail!(
                "e2e records carry a {HEADER_LEN}-byte timestamp header: sizes must be >= {HEADER_LEN}"
            );
        }
        if let SizeDist::Uniform { min, max } = self.size_dist
            && min > max
        {
            bail!("--size-dist uniform:MIN-MAX needs MIN <= MAX");
        }
        if self.client == Client::Wire {
            if self.scenario == Scenario::Consume {
                bail!("--client wire measures produce and e2e (its consumer starts at the tail)");
            }
            if self.rate == Rate::Max || self.sweep.iter().flatten().any(|r| *r == Rate::Max) {
                bail!("--client wire needs a paced --rate (it is an open-loop latency client)");
            }
            if self.compression != "none" {
                bail!("--client wire sends uncompressed batches: drop --compression");
            }
            if !self.client_props.is_empty() {
                bail!("--client-prop configures librdkafka, not --client wire");
            }
        }
        self.client_props()?;
        Ok(())
    }
}

/// Bytes at the start of every payload: magic then the intended send time (unix nanos).
pub const HEADER_LEN: usize = 16;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Produce,
    Consume,
    E2e,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    Start,
    Tail,
}

/// Messages per second, or unpaced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Rate {
    PerSec(f64),
    Max,
}

impl FromStr for Rate {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        let r: f64 = s
            .trim()
            .parse()
            .with_context(|| format!("bad rate {s:?}"))?;
        if !(r > 0.0 && r.is_finite()) {
            bail!("rate must be > 0 (or `max`), got {s}");
        }
        Ok(Rate::PerSec(r))
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSec(r) => write!(f, "{r}"),
            Rate::Max => write!(f, "max"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SizeDist {
    Fixed,
    Uniform { min: usize, max: usize },
}

impl SizeDist {
    /// Smallest size this distribution can produce.
    pub fn min(&self, fixed: usize) -> usize {
        match *self {
            SizeDist::Fixed => fixed,
            SizeDist::Uniform { min, .. } => min,
        }
    }

    /// Largest size this distribution can produce.
    pub fn max(&self, fixed: usize) -> usize {
        match *self {
            SizeDist::Fixed => fixed,
            SizeDist::Uniform { max, .. } => max,
        }
    }
}

impl FromStr for SizeDist {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        if s == "fixed" {
            return Ok(SizeDist::Fixed);
        }
        let range = s.strip_prefix("uniform:").with_context(|| {
            format!("size distribution {s:?}: expected fixed or uniform:MIN-MAX")
        })?;
        let (min, max) = range
            .split_once('-')
            .with_context(|| format!("size distribution {s:?}: expected uniform:MIN-MAX"))?;
        Ok(SizeDist::Uniform {
            min: min.parse().context("uniform MIN")?,
            max: max.parse().context("uniform MAX")?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyDist {
    None,
    Random,
    Hot(u64),
}

impl FromStr for KeyDist {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "none" => Ok(KeyDist::None),
            "random" => Ok(KeyDist::Random),
            _ => {
                let n: u64 = s
                    .strip_prefix("hot:")
                    .with_context(|| format!("keys {s:?}: expected none, random or hot:N"))?
                    .parse()
                    .context("hot:N")?;
                if n == 0 {
                    bail!("hot:N needs N >= 1");
                }
                Ok(KeyDist::Hot(n))
            }
        }
    }
}

/// Which client library drives the load (`--client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
pub enum Client {
    Rdkafka,
    Wire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Acks {
    Zero,
    One,
    All,
}

impl Acks {
    /// The librdkafka `acks` value.
    pub fn as_config(&self) -> &'static str {
        match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        }
    }

    /// The `acks` field of a Produce request.
    pub fn as_wire(&self) -> i16 {
        match self {
            Acks::Zero => 0,
            Acks::One => 1,
            Acks::All => -1,
        }
    }
}

impl FromStr for Acks {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "0" => Ok(Acks::Zero),
            "1" => Ok(Acks::One),
            "all" | "-1" => Ok(Acks::All),
            _ => bail!("acks {s:?}: expected 0, 1 or all"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_value_types() {
        assert_eq!("max".parse::<Rate>().unwrap(), Rate::Max);
        assert_eq!("2500".parse::<Rate>().unwrap(), Rate::PerSec(2500.0));
        assert!("0".parse::<Rate>().is_err());
        assert_eq!(
            "uniform:100-2000".parse::<SizeDist>().unwrap(),
            SizeDist::Uniform {
                min: 100,
                max: 2000
            }
        );
        assert!("uniform:100".parse::<SizeDist>().is_err());
        assert_eq!("hot:4".parse::<KeyDist>().unwrap(), KeyDist::Hot(4));
        assert!("hot:0".parse::<KeyDist>().is_err());
        assert_eq!("-1".parse::<Acks>().unwrap(), Acks::All);
    }
}
