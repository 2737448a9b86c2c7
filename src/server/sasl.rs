//! SASL authentication of one connection on a SASL_PLAINTEXT listener. Until the client has
//! authenticated, only ApiVersions, SaslHandshake and SaslAuthenticate are served; any other
//! request closes the connection, as Kafka does. Mechanisms: PLAIN (one SaslAuthenticate, or
//! after a v0 handshake a bare token frame answered by a bare empty frame) and SCRAM-SHA-256/512
//! (two SaslAuthenticate rounds). Runs on the shard that accepted the connection; PLAINTEXT
//! listeners skip it entirely.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::Decodable;

use std::rc::Rc;

use crate::acl::authorizer::ANONYMOUS;
use crate::config::{SaslConfig, SecurityProtocol};
use crate::handlers::request::{DispatchError, Reply, encode_frame};
use crate::handlers::{sasl_authenticate, sasl_handshake};
use crate::metadata::Cluster;
use crate::protocol::scram::{ScramExchange, ScramHash};

/// The mechanism a v1 handshake chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Scram(ScramHash),
}

#[derive(Debug)]
enum State {
    /// Authenticated, or a PLAINTEXT listener: requests go to dispatch.
    Open,
    AwaitingHandshake,
    /// After a v1 handshake: SaslAuthenticate rounds of this mechanism.
    AwaitingAuthenticate(Mechanism),
    /// SCRAM after the server-first message: waiting for the client-final one.
    ScramFinal(Box<ScramExchange>),
    /// After SaslHandshake v0 (PLAIN only): the next frame is the bare PLAIN token.
    AwaitingRawToken,
}

/// What the connection does with a frame.
pub enum Step {
    /// Serve it as a Kafka request.
    Dispatch(Bytes),
    /// Send this reply; then close the connection if `close` (failed authentication).
    Reply {
        /// A response frame, or the bare empty frame that answers a bare PLAIN token.
        reply: Reply,
        /// Close the connection once it is sent: the authentication failed.
        close: bool,
    },
}

/// Why the connection is closed without an answer.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// Before authentication, a request other than ApiVersions, SaslHandshake and SaslAuthenticate,
    /// or one out of turn; carries its raw API key.
    #[error("API key {0} before SASL authentication")]
    Unauthenticated(i16),
    /// The bare PLAIN token after SaslHandshake v0 was refused; that exchange has no error answer.
    #[error("SASL authentication failed: {0}")]
    Failed(#[from] sasl_authenticate::PlainError),
    /// A SaslHandshake or SaslAuthenticate that does not decode, or in a version not served.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// Where one connection stands in SASL authentication; owned by its connection task.
pub struct SaslSession {
    state: State,
    /// `User:<name>` once authenticated; `User:ANONYMOUS` until then and on PLAINTEXT.
    principal: Rc<str>,
}

impl SaslSession {
    /// Open at once on a PLAINTEXT or SSL listener, as `principal` (`User:ANONYMOUS`, or the
    /// client certificate's user); on SASL_PLAINTEXT and SASL_SSL it waits for a SaslHandshake
    /// and the principal is the SASL user.
    pub fn new(protocol: SecurityProtocol, principal: Rc<str>) -> Self {
        if protocol.uses_sasl() {
            return Self {
                state: State::AwaitingHandshake,
                principal: Rc::from(ANONYMOUS),
            };
        }
        Self {
            state: State::Open,
            principal,
        }
    }

    /// The connection's principal, for the authorizer.
    pub fn principal(&self) -> &Rc<str> {
        &self.principal
    }

    /// Authenticated, or a listener without SASL.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// A bare token frame may be shorter than any Kafka request.
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::AwaitingRawToken)
    }

    /// Decides what to do with the next frame.
    /// `cluster` holds the SCRAM credentials made with AlterUserScramCredentials.
    pub fn step(
        &mut self,
        sasl: &SaslConfig,
        cluster: &Cluster,
        frame: Bytes,
    ) -> Result<Step, SaslError> {
        match self.state {
            State::Open => Ok(Step::Dispatch(frame)),
            State::AwaitingRawToken => {
                let user = sasl_authenticate::verify_plain(&frame, &sasl.plain_users)
                    .inspect_err(|e| note_failure(e))?;
                tracing::debug!(user = %user, "SASL/PLAIN authenticated (handshake v0)");
                self.principal = Rc::from(format!("User:{user}"));
                self.state = State::Open;
                // The bare answer to a bare token: an empty frame.
                Ok(Step::Reply {
                    reply: Reply::Frame(BytesMut::from(&0i32.to_be_bytes()[..])),
                    close: false,
                })
            }
            _ => self.request(sasl, cluster, frame),
        }
    }

    fn request(
        &mut self,
        sasl: &SaslConfig,
        cluster: &Cluster,
        mut frame: Bytes,
    ) -> Result<Step, SaslError> {
        if frame.len() < 8 {
            return Err(DispatchError::Malformed("frame shorter than a header".into()).into());
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api_key = ApiKey::try_from(key).map_err(|()| SaslError::Unauthenticated(key))?;
        match api_key {
            ApiKey::ApiVersions => Ok(Step::Dispatch(frame)),
            ApiKey::SaslHandshake if matches!(self.state, State::AwaitingHandshake) => {
                let (correlation_id, request): (i32, SaslHandshakeRequest) =
                    decode(&mut frame, api_key, version)?;
                let response = sasl_handshake::negotiate(&request.mechanism, version, sasl);
                if response.error_code == 0 {
                    self.state = match ScramHash::of_mechanism(&request.mechanism) {
                        Some(hash) => State::AwaitingAuthenticate(Mechanism::Scram(hash)),
                        None if version == 0 => State::AwaitingRawToken,
                        None => State::AwaitingAuthenticate(Mechanism::Plain),
                    };
                }
                let reply = encode_frame(correlation_id, version, &response)?;
                Ok(Step::Reply {
                    reply,
                    close: false,
                })
            }
            ApiKey::SaslAuthenticate
                if matches!(
                    self.state,
                    State::AwaitingAuthenticate(_) | State::ScramFinal(_)
                ) =>
            {
                let (correlation_id, request): (i32, SaslAuthenticateRequest) =
                    decode(&mut frame, api_key, version)?;
                let (response, close) = self.authenticate(sasl, cluster, &request);
                let reply = encode_frame(correlation_id, version, &response)?;
                Ok(Step::Reply { reply, close })
            }
            _ => Err(SaslError::Unauthenticated(key)),
        }
    }

    /// One SaslAuthenticate round; `true` when the connection must close (refused).
    fn authenticate(
        &mut self,
        sasl: &SaslConfig,
        cluster: &Cluster,
        request: &SaslAuthenticateRequest,
    ) -> (kafka_protocol::messages::SaslAuthenticateResponse, bool) {
        // Any failure leaves the session closed to further attempts: the connection ends.
        let state = std::mem::replace(&mut self.state, State::AwaitingHandshake);
        let (response, outcome) = match state {
            State::AwaitingAuthenticate(Mechanism::Plain) => {
                let (response, outcome) =
                    sasl_authenticate::authenticate_plain(request, &sasl.plain_users);
                (
                    response,
                    outcome
                        .map(|user| (user, State::Open))
                        .map_err(|e| e.to_string()),
                )
            }
            State::AwaitingAuthenticate(Mechanism::Scram(hash)) => {
                let (response, outcome) = sasl_authenticate::scram_first(request, hash, |user| {
                    // Credentials made with the admin API first, as Kafka keeps them;
                    // then the ones derived from the config file's users.
                    cluster
                        .security()
                        .scram_credential(user, hash)
                        .or_else(|| sasl.scram_credential(user, hash))
                });
                let next = outcome.map(|ex| (String::new(), State::ScramFinal(Box::new(ex))));
                (response, next.map_err(|e| e.to_string()))
            }
            State::ScramFinal(exchange) => {
                let (response, outcome) = sasl_authenticate::scram_final(request, *exchange);
                (
                    response,
                    outcome
                        .map(|user| (user, State::Open))
                        .map_err(|e| e.to_string()),
                )
            }
            // `request` only calls this in the two states above.
            other => unreachable!("SaslAuthenticate in state {other:?}"),
        };
        match outcome {
            Ok((user, next)) => {
                if matches!(next, State::Open) {
                    tracing::debug!(user = %user, "SASL authenticated");
                    self.principal = Rc::from(format!("User:{user}"));
                }
                self.state = next;
                (response, false)
            }
            Err(e) => {
                note_failure(&e);
                (response, true)
            }
        }
    }
}

/// Logs and counts a refused authentication (the password is never logged).
fn note_failure(e: &dyn std::fmt::Display) {
    tracing::info!(error = %e, "SASL authentication failed");
    crate::metrics::with_current(|m| {
        m.sasl_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
}

/// Decodes a request of a version we serve: (correlation id, body).
fn decode<R: Decodable>(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(i32, R), DispatchError> {
    let (min, max) = crate::handlers::versions_of(api_key).unwrap_or((0, -1));
    if !(min..=max).contains(&version) {
        return Err(DispatchError::UnsupportedVersion {
            key: api_key,
            version,
        });
    }
    let header = RequestHeader::decode(frame, api_key.request_header_version(version))
        .map_err(|e| DispatchError::Malformed(e.to_string()))?;
    let body: R = crate::handlers::request::decode_body(api_key, frame, version)?;
    if frame.has_remaining() {
        return Err(DispatchError::Malformed(
            "trailing bytes after the request".into(),
        ));
    }
    Ok((header.correlation_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn config() -> crate::config::BrokerConfig {
        let props = std::collections::BTreeMap::from([
            (
                "listeners".to_string(),
                "SASL_PLAINTEXT://127.0.0.1:9092".to_string(),
            ),
            (
                crate::config::PLAIN_JAAS_KEY.to_string(),
                r#"PlainLoginModule required user_alice="pw";"#.to_string(),
            ),
        ]);
        crate::config::BrokerConfig::from_properties(&props, &Default::default(), 1).unwrap()
    }

    /// An empty single-node metadata (no SCRAM users made with the admin API).
    fn empty_cluster() -> (tempfile::TempDir, Cluster) {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::load_or_init(dir.path(), 1).unwrap();
        (dir, cluster)
    }

    fn frame<R: Encodable>(key: ApiKey, version: i16, body: &R) -> Bytes {
        let mut buf = BytesMut::new();
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = 7;
        header.client_id = Some(StrBytes::from_static_str("t"));
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn authenticate(password: &str) -> Bytes {
        let mut request = SaslAuthenticateRequest::default();
        let mut token = BytesMut::new();
        token.put_slice(b"\0alice\0");
        token.put_slice(password.as_bytes());
        request.auth_bytes = token.freeze();
        frame(ApiKey::SaslAuthenticate, 2, &request)
    }

    fn handshake(version: i16) -> Bytes {
        let mut request = SaslHandshakeRequest::default();
        request.mechanism = StrBytes::from_static_str("PLAIN");
        frame(ApiKey::SaslHandshake, version, &request)
    }

    #[test]
    fn only_the_sasl_apis_pass_before_authentication() {
        let config = config();
        let (_dir, cluster) = empty_cluster();
        let mut session = SaslSession::new(SecurityProtocol::SaslPlaintext, Rc::from(ANONYMOUS));
        let metadata = frame(
            ApiKey::Metadata,
            12,
            &kafka_protocol::messages::MetadataRequest::default(),
        );
        assert!(matches!(
            session.step(&config.sasl, &cluster, metadata.clone()),
            Err(SaslError::Unauthenticated(3))
        ));
        let versions = frame(
            ApiKey::ApiVersions,
            3,
            &kafka_protocol::messages::ApiVersionsRequest::default(),
        );
        assert!(matches!(
            session.step(&config.sasl, &cluster, versions),
            Ok(Step::Dispatch(_))
        ));
        assert!(matches!(
            session.step(&config.sasl, &cluster, handshake(1)),
            Ok(Step::Reply { close: false, .. })
        ));
        assert!(matches!(
            session.step(&config.sasl, &cluster, authenticate("pw")),
            Ok(Step::Reply { close: false, .. })
        ));
        assert!(matches!(
            session.step(&config.sasl, &cluster, metadata),
            Ok(Step::Dispatch(_))
        ));
    }

    #[test]
    fn a_wrong_password_is_answered_then_closes() {
        let config = config();
        let (_dir, cluster) = empty_cluster();
        let mut session = SaslSession::new(SecurityProtocol::SaslPlaintext, Rc::from(ANONYMOUS));
        session.step(&config.sasl, &cluster, handshake(1)).unwrap();
        assert!(matches!(
            session.step(&config.sasl, &cluster, authenticate("nope")),
            Ok(Step::Reply { close: true, .. })
        ));
    }

    #[test]
    fn handshake_v0_takes_a_bare_token() {
        let config = config();
        let (_dir, cluster) = empty_cluster();
        let mut session = SaslSession::new(SecurityProtocol::SaslPlaintext, Rc::from(ANONYMOUS));
        session.step(&config.sasl, &cluster, handshake(0)).unwrap();
        assert!(session.expects_raw_token());
        assert!(matches!(
            session.step(&config.sasl, &cluster, Bytes::from_static(b"\0alice\0bad")),
            Err(SaslError::Failed(_))
        ));
        let mut session = SaslSession::new(SecurityProtocol::SaslPlaintext, Rc::from(ANONYMOUS));
        session.step(&config.sasl, &cluster, handshake(0)).unwrap();
        assert!(matches!(
            session.step(&config.sasl, &cluster, Bytes::from_static(b"\0alice\0pw")),
            Ok(Step::Reply { close: false, .. })
        ));
        assert!(!session.expects_raw_token());
    }
}
