//! SaslAuthenticate (key 36): one SASL token exchange. PLAIN needs one: the client sends
//! `authzid NUL username NUL password` and the broker checks the password against the users of
//! `listener.name.sasl_plaintext.plain.sasl.jaas.config`. SCRAM needs two: client-first ->
//! server-first, client-final -> server-final (`protocol::scram`). During authentication the
//! connection's SASL session calls these; on an open connection the request gets
//! ILLEGAL_SASL_STATE, as in Kafka.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};

use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::protocol::scram::{self, ScramCredential, ScramError, ScramExchange, ScramHash};
use crate::shard::Shard;

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Why a PLAIN token was refused; the client only learns "invalid username or password".
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    /// Not `authzid NUL username NUL password`, or an empty or non-UTF-8 user name.
    #[error("malformed PLAIN token")]
    Malformed,
    /// A non-empty authorization id other than the user name (Kafka refuses it too); carries it.
    #[error("authorization id {0:?} differs from the user name")]
    OtherIdentity(String),
    /// No such user in the JAAS config, or the wrong password; carries the user name.
    #[error("unknown user or wrong password for {0:?}")]
    BadCredentials(String),
}

/// Checks a PLAIN token; returns the authenticated user name.
pub fn verify_plain(token: &[u8], users: &BTreeMap<String, String>) -> Result<String, PlainError> {
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Malformed);
    };
    let user = std::str::from_utf8(user).map_err(|_| PlainError::Malformed)?;
    if user.is_empty() {
        return Err(PlainError::Malformed);
    }
    // Kafka's PLAIN server accepts an authorization id only when it names the user itself.
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(PlainError::OtherIdentity(
            String::from_utf8_lossy(authzid).into_owned(),
        ));
    }
    match users.get(user) {
        Some(expected) if constant_time_eq(expected.as_bytes(), password) => Ok(user.to_string()),
        _ => Err(PlainError::BadCredentials(user.to_string())),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a password matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The answer to a refused token; the client learns nothing about why.
fn refused() -> SaslAuthenticateResponse {
    let mut response = SaslAuthenticateResponse::default();
    response.error_code = ResponseError::SaslAuthenticationFailed.code();
    response.error_message = Some(str_bytes(
        "Authentication failed: Invalid username or password",
    ));
    response
}

/// The answer carrying the server's next SASL message.
fn challenge(message: String) -> SaslAuthenticateResponse {
    let mut response = SaslAuthenticateResponse::default();
    response.auth_bytes = message.into_bytes().into();
    response
}

/// The answer to a PLAIN token.
pub fn authenticate_plain(
    request: &SaslAuthenticateRequest,
    users: &BTreeMap<String, String>,
) -> (SaslAuthenticateResponse, Result<String, PlainError>) {
    let outcome = verify_plain(&request.auth_bytes, users);
    let response = if outcome.is_ok() {
        SaslAuthenticateResponse::default()
    } else {
        refused()
    };
    (response, outcome)
}

/// The answer to SCRAM's client-first message: the server-first message.
/// `credential` finds a user's credential for `hash`.
pub fn scram_first(
    request: &SaslAuthenticateRequest,
    hash: ScramHash,
    credential: impl Fn(&str) -> Option<ScramCredential>,
) -> (SaslAuthenticateResponse, Result<ScramExchange, ScramError>) {
    // A v4 UUID's 122 random bits, as hex: printable and comma-free, as SCRAM nonces must be.
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    match scram::server_first(hash, &request.auth_bytes, &nonce, credential) {
        Ok((message, exchange)) => (challenge(message), Ok(exchange)),
        Err(e) => (refused(), Err(e)),
    }
}

/// The answer to SCRAM's client-final message: the server-final message, or a refusal.
pub fn scram_final(
    request: &SaslAuthenticateRequest,
    exchange: ScramExchange,
) -> (SaslAuthenticateResponse, Result<String, ScramError>) {
    match exchange.client_final(&request.auth_bytes) {
        Ok((user, message)) => (challenge(message), Ok(user)),
        Err(e) => (refused(), Err(e)),
    }
}

/// The registry's entry: SaslAuthenticate on an open connection.
pub async fn handle(
    _shard: &Rc<Shard>,
    _ctx: &RequestContext,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    handle_open(request)
}

/// SaslAuthenticate on an open connection (no SASL exchange in progress): ILLEGAL_SASL_STATE, as in
/// Kafka.
pub fn handle_open(_request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let mut response = SaslAuthenticateResponse::default();
    response.error_code = ResponseError::IllegalSaslState.code();
    response.error_message = Some(str_bytes(
        "SaslAuthenticate is only valid right after a SaslHandshake on a SASL listener",
    ));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        BTreeMap::from([("alice".to_string(), "s3cret".to_string())])
    }

    #[test]
    fn plain_tokens_are_checked_against_the_users() {
        assert_eq!(
            verify_plain(b"\0alice\0s3cret", &users()),
            Ok("alice".into())
        );
        assert_eq!(
            verify_plain(b"alice\0alice\0s3cret", &users()),
            Ok("alice".into())
        );
        assert_eq!(
            verify_plain(b"\0alice\0s3cre", &users()),
            Err(PlainError::BadCredentials("alice".into()))
        );
        assert_eq!(
            verify_plain(b"\0bob\0s3cret", &users()),
            Err(PlainError::BadCredentials("bob".into()))
        );
        assert_eq!(
            verify_plain(b"mallory\0alice\0s3cret", &users()),
            Err(PlainError::OtherIdentity("mallory".into()))
        );
        for malformed in [&b""[..], b"alice", b"\0alice", b"\0\0pw", b"\0a\0b\0c"] {
            assert_eq!(
                verify_plain(malformed, &users()),
                Err(PlainError::Malformed)
            );
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
    }
}
