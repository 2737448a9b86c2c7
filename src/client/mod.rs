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
//! - [`acls`]: CreateAcls, DescribeAcls and DeleteAcls.
//! - [`scram`]: DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554).

pub mod acls;
pub mod admin;
pub mod cluster;
pub mod connection;
pub mod fetch;
pub mod produce;
pub mod quorum;
pub mod quotas;
pub mod reassignments;
pub mod scram;
pub mod share_groups;

use kafka_protocol::ResponseError;

pub use cluster::Client;
pub use connection::{Connection, Credentials, SaslMechanism};

/// Everything that can go wrong talking to a broker, kept apart from CLI concerns.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be opened: the address did not resolve, was refused, or
    /// did not accept within 5 s.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The `host:port` tried (of a bootstrap list, the last one).
        addr: String,
        /// The error of the last resolved address tried.
        source: std::io::Error,
    },
    /// An open connection failed while writing a request or reading its response, including
    /// the 30 s I/O timeout.
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        /// The broker's `host:port`.
        addr: String,
        /// The socket error (a read that timed out shows as `WouldBlock` or `TimedOut`).
        source: std::io::Error,
    },
    /// `kafka-protocol` could not encode a request or its header at the chosen version.
    #[error("cannot encode {api} v{version}: {reason}")]
    Encode {
        /// Readable API name, e.g. `CreateTopics` (see [`connection::api_name`]).
        api: String,
        /// The request version that failed to encode.
        version: i16,
        /// `kafka-protocol`'s error text.
        reason: String,
    },
    /// A response did not decode at the version sent, or its correlation id did not match the
    /// request's.
    #[error("cannot decode the {api} v{version} response from {addr}: {reason}")]
    Decode {
        /// Readable API name, e.g. `Fetch`.
        api: String,
        /// The version the request was sent at, which the response is decoded at too.
        version: i16,
        /// The broker's `host:port`.
        addr: String,
        /// What did not decode, or the mismatching correlation ids.
        reason: String,
    },
    /// The broker does not advertise the API in ApiVersions, or no version of it overlaps the
    /// range this client speaks (after the caller's cap).
    #[error("broker {addr} does not implement {api}{}", unsupported_detail(offered.as_deref(), ours))]
    Unsupported {
        /// Readable API name, e.g. `IncrementalAlterConfigs`.
        api: String,
        /// The broker's `host:port`.
        addr: String,
        /// The broker's range, when it has the API at all.
        offered: Option<String>,
        /// The range this client speaks after any cap, as `vMIN-vMAX`.
        ours: String,
    },
    /// The broker answered with a non-zero Kafka error code (see [`ClientError::check`]).
    #[error("{context}: {error}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// What was being done, e.g. `creating topic 'x'`; the message starts with it.
        context: String,
        /// The Kafka error the code stands for.
        error: ResponseError,
        /// The broker's error message, when it sent a non-empty one.
        message: Option<String>,
    },
    /// The cluster's metadata has no such topic (or reported an error for it).
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The topic exists but the cached metadata has no partition with that index.
    #[error("partition {partition} of topic '{topic}' does not exist")]
    UnknownPartition {
        /// The topic that was looked up.
        topic: String,
        /// The partition index it lacks.
        partition: i32,
    },
    /// The partition has no leader at the moment (metadata reports leader -1).
    #[error("no leader is available for {topic}-{partition}")]
    NoLeader {
        /// Topic of the partition.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A broker id is not in the cached metadata, so there is no address to connect to.
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),
    /// The peer broke the protocol (an impossible frame size, a response lacking what was asked
    /// for, a damaged batch), or the bootstrap list was empty.
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

/// Result of the client's calls; the error defaults to [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Builds a `StrBytes` from anything string-like (kafka-protocol's string type).
pub(crate) fn sb(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}
