//! librdkafka clients: shared configuration, a context that reports broker errors, and the
//! topic set-up every scenario needs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Lines each client may print before it goes quiet: a failing broker must be visible, but a
/// client retrying 10,000 times a second must not bury the summary.
const LOG_LINES_MAX: u64 = 20;

/// Client context that prints librdkafka's warnings and errors (rate-limited) to stderr, so a
/// request the broker rejects shows up in the run's output instead of as a silent stall.
pub struct Reporting {
    name: String,
    lines: AtomicU64,
}

impl Reporting {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            lines: AtomicU64::new(0),
        }
    }

    fn say(&self, what: std::fmt::Arguments<'_>) {
        let n = self.lines.fetch_add(1, Ordering::Relaxed);
        if n < LOG_LINES_MAX {
            eprintln!("[{}] {what}", self.name);
        } else if n == LOG_LINES_MAX {
            eprintln!("[{}] (further client messages suppressed)", self.name);
        }
    }
}

impl ClientContext for Reporting {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= RDKafkaLogLevel::Warning as i32 {
            self.say(format_args!("librdkafka {level:?} {fac}: {log_message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching the end of a partition is how a consume-from-start run ends, not a fault.
        if matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            return;
        }
        self.say(format_args!("error: {error}: {reason}"));
    }
}

/// Consumers keep librdkafka's default rebalance handling (unused: partitions are assigned).
impl ConsumerContext for Reporting {}

/// Settings common to every client of a run.
pub fn base_config(bootstrap: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        // Refresh often enough that a topic created a moment ago is found quickly.
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set("log_level", "4");
    for (k, v) in extra {
        cfg.set(k, v);
    }
    cfg
}

/// Creates `topic` with `partitions` partitions (replication factor 1); an existing topic is
/// kept as it is.
pub async fn ensure_topic(cfg: &ClientConfig, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = cfg.create().context("creating admin client")?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .context("CreateTopics request failed")?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("CreateTopics {name}: broker answered {code:?}"),
        }
    }
    Ok(())
}

/// Partition ids of `topic`, waiting (up to `wait`) until metadata lists them with leaders.
pub fn topic_partitions(
    cfg: &ClientConfig,
    topic: &str,
    wait: Duration,
) -> anyhow::Result<Vec<i32>> {
    let consumer: BaseConsumer<Reporting> = cfg
        .create_with_context(Reporting::new("metadata"))
        .context("creating metadata client")?;
    let deadline = Instant::now() + wait;
    loop {
        let last = match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(md) => {
                let parts: Vec<i32> = md
                    .topics()
                    .iter()
                    .filter(|t| t.name() == topic && t.error().is_none())
                    .flat_map(|t| t.partitions())
                    .filter(|p| p.leader() >= 0)
                    .map(|p| p.id())
                    .collect();
                if !parts.is_empty() {
                    return Ok(parts);
                }
                "no partitions with a leader yet".to_string()
            }
            Err(e) => format!("Metadata request failed: {e}"),
        };
        if Instant::now() >= deadline {
            bail!("topic {topic}: {last}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
