//! The Kafka-tool-like subcommands of `sluice`: one module per command, each with its clap
//! arguments and a `run` that talks to the cluster through [`crate::client`] (or, for
//! `dump-log`, reads files) and prints a table or JSON. `main.rs` only dispatches here.
//!
//! Errors carry a hint of what to do next; [`report`] prints both and picks the exit code.

pub mod acls;
pub mod cluster;
pub mod command_config;
pub mod configs;
pub mod consume;
pub mod dump_log;
pub mod groups;
pub mod produce;
pub mod quotas;
pub mod table;
pub mod time;
pub mod topics;
pub mod users;

use std::process::ExitCode;

use kafka_protocol::ResponseError;

use crate::client::{Client, ClientError};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Flags every broker-facing subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// host:port of any broker in the cluster.
    #[arg(long, default_value = "localhost:9092", value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Client properties, as for Kafka's tools: `security.protocol=SASL_PLAINTEXT`,
    /// `sasl.mechanism=PLAIN` (or SCRAM-SHA-256, SCRAM-SHA-512) and
    /// `sasl.jaas.config=... username="u" password="p";`.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

impl Common {
    /// Reads `--command-config` (when given) and connects to `--bootstrap-server`.
    pub fn connect(&self) -> Result<Client, CliError> {
        let credentials = match &self.command_config {
            Some(path) => command_config::credentials(path)?,
            None => None,
        };
        Ok(Client::connect(&self.bootstrap_server, credentials)?)
    }
}

/// A failed command: what went wrong, and what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A client call failed; [`client_hint`] supplies the hint.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Bad arguments (exit code 2, as clap uses).
    #[error("{message}")]
    Usage {
        /// What is wrong with the arguments.
        message: String,
        /// How to write them instead.
        hint: String,
    },
    /// A failure we can explain better than the underlying error.
    #[error("{message}")]
    Explained {
        /// What failed, in the operator's terms.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// A local read or write failed (stdin, a file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `reading stdin`.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Some of several per-item operations failed; [`summarize`] already printed each one.
    #[error("{failed} of {total} operations failed (see above)")]
    Partial {
        /// How many failed.
        failed: usize,
        /// How many were attempted.
        total: usize,
    },
    /// Serializing the `--output json` result failed.
    #[error("cannot encode JSON output: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// A [`CliError::Usage`]: bad arguments, exit code 2.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A [`CliError::Explained`]: a failure with a better message than the raw error.
    pub fn explained(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CliError::Explained {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A [`CliError::Io`], with what was being done as context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// What to try next, when we can tell.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Client(e) => client_hint(e),
            CliError::Usage { hint, .. } | CliError::Explained { hint, .. } => Some(hint.clone()),
            CliError::Io { .. } | CliError::Partial { .. } | CliError::Json(_) => None,
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } => 2,
            _ => 1,
        }
    }
}

/// Hints for the failures operators hit most.
pub fn client_hint(e: &ClientError) -> Option<String> {
    let text = match e {
        ClientError::Connect { .. } => {
            "is a broker running there? Start one with `sluice serve` or pass --bootstrap-server HOST:PORT"
        }
        ClientError::Unsupported { .. } => {
            "this broker does not implement that API; upgrade it or use a tool it supports"
        }
        ClientError::UnknownTopic(_) | ClientError::UnknownPartition { .. } => {
            "list the topics with `sluice topics list` and their partitions with `sluice topics describe`"
        }
        ClientError::Io { .. } => {
            "the connection broke; if the broker requires SASL, pass --command-config with the credentials; otherwise check the broker's log and retry"
        }
        ClientError::Broker { error, .. } => return broker_hint(*error).map(str::to_string),
        _ => return None,
    };
    Some(text.to_string())
}

fn broker_hint(error: ResponseError) -> Option<&'static str> {
    Some(match error {
        ResponseError::TopicAlreadyExists => {
            "pick another name, or change it with `sluice topics alter`"
        }
        ResponseError::UnknownTopicOrPartition => "list the topics with `sluice topics list`",
        ResponseError::InvalidReplicationFactor => {
            "a replication factor cannot exceed the number of nodes; on one node use --replication-factor 1"
        }
        ResponseError::InvalidPartitions => {
            "the partition count must be positive and can only grow"
        }
        ResponseError::InvalidConfig | ResponseError::InvalidRequest => {
            "check the config names and values against `sluice configs describe --all`"
        }
        ResponseError::InvalidTopicException => {
            "topic names use only letters, digits, '.', '_' and '-', at most 249 characters"
        }
        ResponseError::GroupIdNotFound => "list the groups with `sluice groups list`",
        ResponseError::NonEmptyGroup | ResponseError::UnknownMemberId => {
            "stop the group's consumers first; offsets can only be changed while it is empty"
        }
        ResponseError::CoordinatorNotAvailable | ResponseError::CoordinatorLoadInProgress => {
            "the group coordinator is starting; retry in a few seconds"
        }
        ResponseError::OffsetOutOfRange => {
            "the offset is outside the log; use --from-beginning or --offset earliest|latest"
        }
        ResponseError::PolicyViolation | ResponseError::TopicAuthorizationFailed => {
            "the broker refused by policy; ask its operator"
        }
        _ => return None,
    })
}

/// Tools print to pipes (`| head`); like other Unix tools they should end quietly when the
/// reader goes away instead of panicking on EPIPE. Rust ignores SIGPIPE by default.
pub fn restore_default_sigpipe() {
    // SAFETY: resetting a signal disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Prints a failure and its hint to stderr and returns the exit code.
pub fn report(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// The JSON line a change command prints: what it acted on and what it did.
#[derive(serde::Serialize)]
pub struct Outcome<'a> {
    /// What was acted on: `topic`, `group` or `broker`.
    pub resource: &'a str,
    /// Its name (a broker's id in decimal).
    pub name: &'a str,
    /// What was done, in the past tense: `created`, `altered` or `deleted`.
    pub result: &'a str,
}

impl Outcome<'_> {
    /// Prints it as one line of JSON on stdout.
    pub fn print(&self) -> Result<(), CliError> {
        println!("{}", serde_json::to_string(self)?);
        Ok(())
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Parses `k=v` (the value may contain '='); the flag name goes into the error.
pub fn parse_key_value(text: &str, flag: &str) -> Result<(String, String), CliError> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(CliError::usage(
            format!("invalid {flag} '{text}': expected key=value"),
            format!("write it as {flag} name=value, e.g. {flag} retention.ms=86400000"),
        )),
    }
}

/// Parses a comma-separated `k=v,k2=v2` list.
pub fn parse_key_values(text: &str, flag: &str) -> Result<Vec<(String, String)>, CliError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|kv| parse_key_value(kv, flag))
        .collect()
}

/// Turns per-item results into printed failures and one summary error.
pub fn summarize<T>(results: &[(String, Result<T, ClientError>)]) -> Result<(), CliError> {
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    for (_, r) in results {
        if let Err(e) = r {
            eprintln!("sluice: error: {e}");
            if let Some(hint) = client_hint(e) {
                eprintln!("hint: {hint}");
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::Partial {
            failed,
            total: results.len(),
        })
    }
}

/// A single failure is reported as itself (with its hint); several as a summary.
pub fn first_error(mut results: Vec<(String, Result<(), ClientError>)>) -> Result<(), CliError> {
    if results.len() == 1 {
        // Invariant: length checked just above.
        let (_, result) = results.pop().expect("one result");
        return Ok(result?);
    }
    summarize(&results)
}

/// Bytes as text for display: UTF-8 where valid, lossily otherwise; `null` for none.
pub fn show_bytes(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(
        || "null".to_string(),
        |b| String::from_utf8_lossy(b).into_owned(),
    )
}
