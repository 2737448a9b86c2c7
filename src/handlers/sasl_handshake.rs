//! SaslHandshake (key 17): the client names its SASL mechanism. During authentication the
//! connection's SASL session answers it (`server::sasl`); a handshake on an open connection
//! (PLAINTEXT listener, or already authenticated) reaches this handler and gets
//! ILLEGAL_SASL_STATE, as Kafka answers it.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use crate::config::SecurityProtocol;
use crate::handlers::str_bytes;

pub const VERSIONS: (i16, i16) = (0, 1);

/// The answer during authentication: the mechanism is accepted if it is enabled.
pub fn negotiate(mechanism: &str, enabled: &[&str]) -> SaslHandshakeResponse {
    let mut response = SaslHandshakeResponse::default();
    response.mechanisms = enabled.iter().map(|m| str_bytes(*m)).collect();
    if !enabled.contains(&mechanism) {
        response.error_code = ResponseError::UnsupportedSaslMechanism.code();
    }
    response
}

/// The answer outside authentication.
pub fn out_of_state(protocol: SecurityProtocol, enabled: &[&str]) -> SaslHandshakeResponse {
    let mut response = SaslHandshakeResponse::default();
    response.error_code = ResponseError::IllegalSaslState.code();
    if protocol == SecurityProtocol::SaslPlaintext {
        response.mechanisms = enabled.iter().map(|m| str_bytes(*m)).collect();
    }
    response
}

pub fn handle_open(
    protocol: SecurityProtocol,
    _request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    out_of_state(protocol, crate::server::sasl::MECHANISMS)
}
