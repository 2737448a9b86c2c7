//! A small synchronous Kafka client used by the `sluice` tools (topics, produce, consume,
//! groups, configs). It speaks the Kafka protocol over blocking `std::net::TcpStream`s to any
//! Kafka-compatible broker, not only Sluice: every request's version is picked from the
//! broker's ApiVersions answer intersected with what `kafka-protocol` can encode.
//!
//! Runs in the CLI process only; the broker never links against it at run time.
//!
//! - [`connection`]: one TCP connection, request framing, ApiVersions negotiation.
//! - [`cluster`]: bootstrap, metadata, and routing partition requests to leaders.
//! - [`admin`]: topic, config and consumer-group administration.
//! - [`produce`]: building record batches and sending them to partition leaders.
//! - [`fetch`]: ListOffsets and Fetch, decoding the returned batches into records.

pub mod admin;
pub mod cluster;
pub mod connection;
pub mod fetch;
pub mod produce;

use kafka_protocol::ResponseError;

pub use cluster::Client;
pub use connection::{Connection, Credentials};

/// Everything that can go wrong talking to a broker, kept apart from CLI concerns.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot encode {api} v{version}: {reason}")]
    Encode {
        api: String,
        version: i16,
        reason: String,
    },
    #[error("cannot decode the {api} v{version} response from {addr}: {reason}")]
    Decode {
        api: String,
        version: i16,
        addr: String,
        reason: String,
    },
    #[error("broker {addr} does not implement {api}{}", unsupported_detail(offered.as_deref(), ours))]
    Unsupported {
        api: String,
        addr: String,
        /// The broker's range, when it has the API at all.
        offered: Option<String>,
        ours: String,
    },
    #[error("{context}: {error}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        context: String,
        error: ResponseError,
        message: Option<String>,
    },
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("partition {partition} of topic '{topic}' does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("no leader is available for {topic}-{partition}")]
    NoLeader { topic: String, partition: i32 },
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    #[error("protocol error: {0}")]
    Protocol(String),
}

fn unsupported_detail(offered: Option<&str>, ours: &str) -> String {
    offered.map_or_else(String::new, |o| {
        format!(" in a version this client speaks (it offers {o}, we speak {ours})")
    })
}

impl ClientError {
    /// Builds a `Broker` error from a non-zero error code; `None` when the code is 0.
    pub fn check(
        code: i16,
        context: impl FnOnce() -> String,
        message: Option<&kafka_protocol::protocol::StrBytes>,
    ) -> Result<(), ClientError> {
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(error) => Err(ClientError::Broker {
                context: context(),
                error,
                message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
            }),
        }
    }

    /// The Kafka error behind this failure, if the broker answered with one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Broker { error, .. } => Some(*error),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Builds a `StrBytes` from anything string-like (kafka-protocol's string type).
pub(crate) fn sb(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}
