//! One blocking TCP connection to one broker: size-prefixed request/response framing,
//! correlation ids, and the ApiVersions handshake that decides which version of each API we
//! send. Used by [`super::cluster::Client`] for every broker it talks to.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, Request};

use super::{ClientError, Result, sb};
use crate::protocol::scram::{ClientFirst, ScramHash};

/// Largest response frame accepted: bounds memory if a peer is not a Kafka broker.
const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;
/// How long to wait for a TCP connection to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a response; long-poll fetches wait far less than this.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// ApiVersions error code for a version the broker cannot parse.
const UNSUPPORTED_VERSION: i16 = 35;

const CLIENT_ID: &str = "sluice-cli";

/// SASL credentials for brokers with SASL_PLAINTEXT listeners.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// SASL authentication identity.
    pub username: String,
    /// PLAIN sends it in clear text inside the SaslAuthenticate token; SCRAM only proves it
    /// is known. Never shown by `Debug`.
    pub password: String,
    /// How to authenticate.
    pub mechanism: SaslMechanism,
}

/// The SASL mechanisms this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaslMechanism {
    /// SASL/PLAIN: one SaslAuthenticate with `\0user\0password`.
    #[default]
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512: two SaslAuthenticate rounds (RFC 5802).
    Scram(ScramHash),
}

impl SaslMechanism {
    /// The mechanism's name in SaslHandshake and `sasl.mechanism`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(hash) => hash.mechanism(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    /// The password never reaches error messages or logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// A connection with the broker's advertised version ranges.
pub struct Connection {
    stream: TcpStream,
    addr: String,
    next_correlation_id: i32,
    /// API key -> (min, max) the broker advertised.
    versions: HashMap<i16, (i16, i16)>,
}

/// The readable name of an API key, for error messages.
pub fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|()| format!("API {key}"))
}

impl Connection {
    /// Connects to `addr` (host:port), negotiates API versions and, with `credentials`,
    /// authenticates with their SASL mechanism.
    pub fn connect(addr: &str, credentials: Option<&Credentials>) -> Result<Self> {
        let stream = open_stream(addr)?;
        let mut conn = Self {
            stream,
            addr: addr.to_string(),
            next_correlation_id: 1,
            versions: HashMap::new(),
        };
        conn.negotiate()?;
        if let Some(credentials) = credentials {
            conn.handshake(credentials.mechanism)?;
            match credentials.mechanism {
                SaslMechanism::Plain => conn.authenticate_plain(credentials)?,
                SaslMechanism::Scram(hash) => conn.authenticate_scram(hash, credentials)?,
            }
        }
        Ok(conn)
    }

    /// SaslHandshake v1 (v1: the authentication then goes in SaslAuthenticate frames).
    fn handshake(&mut self, mechanism: SaslMechanism) -> Result<()> {
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = sb(mechanism.name());
        let answer = self.send(&handshake, Some(1))?;
        ClientError::check(
            answer.error_code,
            || format!("SASL handshake ({}) with {}", mechanism.name(), self.addr),
            None,
        )
    }

    /// One SaslAuthenticate with `\0user\0password`.
    fn authenticate_plain(&mut self, credentials: &Credentials) -> Result<()> {
        let mut token =
            Vec::with_capacity(2 + credentials.username.len() + credentials.password.len());
        token.push(0);
        token.extend_from_slice(credentials.username.as_bytes());
        token.push(0);
        token.extend_from_slice(credentials.password.as_bytes());
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = token.into();
        let answer = self.send(&request, None)?;
        ClientError::check(
            answer.error_code,
            || {
                format!(
                    "SASL authentication as {} with {}",
                    credentials.username, self.addr
                )
            },
            answer.error_message.as_ref(),
        )
    }

    /// The two SCRAM rounds: client-first, then client-final with our proof; the server's
    /// final message must carry its signature, so a broker that does not hold the credential
    /// cannot pretend the login worked.
    fn authenticate_scram(&mut self, hash: ScramHash, credentials: &Credentials) -> Result<()> {
        let context = format!(
            "SASL authentication ({}) as {} with {}",
            hash.mechanism(),
            credentials.username,
            self.addr
        );
        // A v4 uuid is 122 random bits; its hex form has no ',' to escape.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let (client, first) =
            ClientFirst::new(hash, &credentials.username, &credentials.password, &nonce);
        let server_first = self.sasl_round(first.into_bytes(), &context)?;
        let (client, last) = client
            .client_final(&server_first)
            .map_err(|e| ClientError::Protocol(format!("{context}: {e}")))?;
        let server_final = self.sasl_round(last.into_bytes(), &context)?;
        client
            .verify(&server_final)
            .map_err(|e| ClientError::Protocol(format!("{context}: {e}")))
    }

    /// One SaslAuthenticate: sends `token`, returns the server's.
    fn sasl_round(&mut self, token: Vec<u8>, context: &str) -> Result<Bytes> {
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = token.into();
        let answer = self.send(&request, None)?;
        ClientError::check(
            answer.error_code,
            || context.to_string(),
            answer.error_message.as_ref(),
        )?;
        Ok(answer.auth_bytes)
    }

    /// The `host:port` this connection was opened to, as passed to [`Connection::connect`].
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Asks the broker for its version ranges. Starts with the newest ApiVersions we know;
    /// a broker that cannot parse it answers v0 with its own range, and we retry with that.
    fn negotiate(&mut self) -> Result<()> {
        let ours = ApiVersionsRequest::VERSIONS.max;
        let mut response = self.api_versions(ours)?;
        if response.error_code == UNSUPPORTED_VERSION {
            let theirs = response
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                .map(|k| k.max_version)
                .unwrap_or(0);
            response = self.api_versions(theirs.min(ours))?;
        }
        ClientError::check(
            response.error_code,
            || format!("ApiVersions to {}", self.addr),
            None,
        )?;
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse> {
        let mut request = ApiVersionsRequest::default();
        if version >= 3 {
            request.client_software_name = sb(CLIENT_ID);
            request.client_software_version = sb(env!("CARGO_PKG_VERSION"));
        }
        self.send_at(&request, version)
    }

    /// Whether the broker advertises this API at all.
    pub fn supports(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// The newest version both sides speak, optionally capped (some newer versions switch
    /// to topic ids or batched forms this client does not build).
    pub fn version_for<R: Request>(&self, cap: Option<i16>) -> Result<i16> {
        let ours_max = cap.map_or(R::VERSIONS.max, |c| c.min(R::VERSIONS.max));
        let unsupported = |offered: Option<String>| ClientError::Unsupported {
            api: api_name(R::KEY),
            addr: self.addr.clone(),
            offered,
            ours: format!("v{}-v{}", R::VERSIONS.min, ours_max),
        };
        let &(min, max) = self
            .versions
            .get(&R::KEY)
            .ok_or_else(|| unsupported(None))?;
        let version = max.min(ours_max);
        if version < min.max(R::VERSIONS.min) {
            return Err(unsupported(Some(format!("v{min}-v{max}"))));
        }
        Ok(version)
    }

    /// Sends `request` at the newest common version (capped) and reads its response.
    pub fn send<R: Request>(&mut self, request: &R, cap: Option<i16>) -> Result<R::Response> {
        let version = self.version_for::<R>(cap)?;
        self.send_at(request, version)
    }

    /// Sends `request` at exactly `version` and reads its response.
    pub fn send_at<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response> {
        let correlation_id = self.write_request(request, version)?;
        self.read_response::<R>(correlation_id, version)
    }

    /// Writes `request` at exactly `version` without reading its answer yet; returns the
    /// correlation id to pass to [`finish_request`](Self::finish_request). Lets a caller
    /// queue a request to a peer it holds stopped, so the peer answers it first thing.
    pub fn start_request<R: Request>(&mut self, request: &R, version: i16) -> Result<i32> {
        self.write_request(request, version)
    }

    /// Reads the answer to a request [`start_request`](Self::start_request) wrote.
    pub fn finish_request<R: Request>(
        &mut self,
        correlation_id: i32,
        version: i16,
    ) -> Result<R::Response> {
        self.read_response::<R>(correlation_id, version)
    }

    /// Sends a request whose response never comes (Produce with acks=0).
    pub fn send_oneway<R: Request>(&mut self, request: &R, version: i16) -> Result<()> {
        self.write_request(request, version).map(|_| ())
    }

    fn write_request<R: Request>(&mut self, request: &R, version: i16) -> Result<i32> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, correlation_id)?;
        self.stream.write_all(&frame).map_err(|e| self.io(e))?;
        Ok(correlation_id)
    }

    fn read_response<R: Request>(
        &mut self,
        correlation_id: i32,
        version: i16,
    ) -> Result<R::Response> {
        let mut body = self.read_frame()?;
        let decode_error = |reason: String| ClientError::Decode {
            api: api_name(R::KEY),
            version,
            addr: self.addr.clone(),
            reason,
        };
        let header_version = R::Response::header_version(version);
        let header = kafka_protocol::messages::ResponseHeader::decode(&mut body, header_version)
            .map_err(|e| decode_error(e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(decode_error(format!(
                "correlation id {} does not match request {correlation_id}",
                header.correlation_id
            )));
        }
        R::Response::decode(&mut body, version).map_err(|e| decode_error(e.to_string()))
    }

    fn read_frame(&mut self) -> Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(|e| self.io(e))?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > MAX_FRAME_BYTES {
            return Err(ClientError::Protocol(format!(
                "{} sent a {size}-byte frame; is it a Kafka broker?",
                self.addr
            )));
        }
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body).map_err(|e| self.io(e))?;
        Ok(Bytes::from(body))
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            addr: self.addr.clone(),
            source,
        }
    }
}

fn open_stream(addr: &str) -> Result<TcpStream> {
    let connect_error = |source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "address did not resolve");
    for candidate in addr.to_socket_addrs().map_err(connect_error)? {
        match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Requests are small and latency-bound; never wait for Nagle.
                stream.set_nodelay(true).map_err(connect_error)?;
                stream
                    .set_read_timeout(Some(IO_TIMEOUT))
                    .map_err(connect_error)?;
                stream
                    .set_write_timeout(Some(IO_TIMEOUT))
                    .map_err(connect_error)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_error(last))
}

/// Frames one request: size, header (at the version the API key demands), body.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> Result<BytesMut> {
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(sb(CLIENT_ID));
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(&[0u8; 4]);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| encode_error(R::KEY, version, e))?;
    request
        .encode(&mut buf, version)
        .map_err(|e| encode_error(R::KEY, version, e))?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

fn encode_error(key: i16, version: i16, e: impl std::fmt::Display) -> ClientError {
    ClientError::Encode {
        api: api_name(key),
        version,
        reason: e.to_string(),
    }
}
