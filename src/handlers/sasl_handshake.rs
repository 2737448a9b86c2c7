//! SaslHandshake (key 17): the client names its SASL mechanism. During authentication the
//! connection's SASL session answers it (`server::sasl`); a handshake on an open connection
//! (PLAINTEXT listener, or already authenticated) reaches this handler and gets
//! ILLEGAL_SASL_STATE, as Kafka answers it.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use crate::config::{ClientListener, SaslConfig};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 1);

fn offered(sasl: &SaslConfig) -> SaslHandshakeResponse {
    let mut response = SaslHandshakeResponse::default();
    response.mechanisms = sasl
        .mechanisms
        .iter()
        .map(|m| str_bytes(m.as_str()))
        .collect();
    response
}

/// The answer during authentication: the mechanism is accepted if it is enabled (and, for a
/// v0 handshake, whose bare-token exchange Sluice implements for PLAIN only, if it is PLAIN).
pub fn negotiate(mechanism: &str, version: i16, sasl: &SaslConfig) -> SaslHandshakeResponse {
    let mut response = offered(sasl);
    let usable = sasl.is_enabled(mechanism) && (version >= 1 || mechanism == "PLAIN");
    if !usable {
        response.error_code = ResponseError::UnsupportedSaslMechanism.code();
    }
    response
}

/// The answer outside authentication.
/// The registry's entry: a handshake on an open connection.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    handle_open(&shard.config.listeners[ctx.listener], request)
}

/// A handshake outside authentication: ILLEGAL_SASL_STATE, listing the enabled mechanisms on a
/// SASL listener and none on a PLAINTEXT or SSL one.
pub fn handle_open(
    listener: &ClientListener,
    _request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let mut response = if listener.protocol.uses_sasl() {
        offered(&listener.sasl)
    } else {
        SaslHandshakeResponse::default()
    };
    response.error_code = ResponseError::IllegalSaslState.code();
    response
}
