//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802 / RFC 7677), the server side: credentials derived
//! from a password, the server-first message, and the proof check of the client-final message.
//! Pure functions and a two-step exchange state, no I/O; the connection's SASL session drives
//! it through two SaslAuthenticate rounds on the connection's shard. Credentials are derived
//! once at start-up (PBKDF2 is deliberately slow and must not run on a shard per login).
//!
//! The client side ([`ClientFirst`]) is here too, for the `sluice` tools' own client: it shares
//! the key derivation, and the tests run both sides against each other.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Iterations for credentials derived at start-up (Kafka's minimum and its tools' default).
pub const ITERATIONS: u32 = 4096;

/// The hash function of a SCRAM mechanism (KIP-84).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScramHash {
    /// SCRAM-SHA-256: 32-byte keys.
    Sha256,
    /// SCRAM-SHA-512: 64-byte keys.
    Sha512,
}

impl ScramHash {
    /// The hash for a SASL mechanism name as SaslHandshake carries it (`"SCRAM-SHA-256"` or
    /// `"SCRAM-SHA-512"`, case-sensitive); `None` for any other mechanism.
    pub fn of_mechanism(mechanism: &str) -> Option<Self> {
        match mechanism {
            "SCRAM-SHA-256" => Some(ScramHash::Sha256),
            "SCRAM-SHA-512" => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    /// The mechanism's SASL name.
    #[must_use]
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of Kafka's `ScramMechanism` wire code (1: SHA-256, 2: SHA-512).
    #[must_use]
    pub fn of_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(ScramHash::Sha256),
            2 => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    /// Kafka's `ScramMechanism` wire code.
    #[must_use]
    pub fn code(self) -> i8 {
        match self {
            ScramHash::Sha256 => 1,
            ScramHash::Sha512 => 2,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so new_from_slice cannot fail.
        match self {
            ScramHash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this hash, the "salted password" that
    /// KIP-554's AlterUserScramCredentials carries and SCRAM clients derive their proof from.
    #[must_use]
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What the server keeps per user and mechanism (never the password itself). Stored in the
/// cluster metadata for users made with AlterUserScramCredentials (byte fields as base64).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    /// Random salt sent to the client (base64) in the server-first message.
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count the client must use; [`ITERATIONS`] for credentials made at start-up.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`, against which the client's proof is checked.
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`, which signs the server-final message.
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Derives the stored and server keys from `password` (PBKDF2 with `iterations` rounds:
    /// slow by design, so call it at start-up, not per login).
    pub fn derive(hash: ScramHash, password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = hash.salted_password(password, &salt, iterations);
        Self::from_salted(hash, &salted, salt, iterations)
    }

    /// The credential of a salted password the client computed (KIP-554's
    /// AlterUserScramCredentials sends the salt and `Hi(password, salt, iterations)`).
    #[must_use]
    pub fn from_salted(hash: ScramHash, salted: &[u8], salt: Vec<u8>, iterations: u32) -> Self {
        let client_key = hash.hmac(salted, b"Client Key");
        Self {
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(salted, b"Server Key"),
            salt,
            iterations,
        }
    }
}

/// Byte fields as base64 strings in the metadata's JSON.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Why a SCRAM exchange failed. The SASL handler answers every one with
/// SASL_AUTHENTICATION_FAILED and the same message, so the client learns nothing of which.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    /// A message is not UTF-8, lacks an attribute, asks for channel binding, names another
    /// authorization id, or its nonce or binding differs from the server's.
    Malformed(&'static str),
    #[error("unknown SCRAM user {0:?}")]
    /// The client-first message names a user with no credential for this mechanism.
    UnknownUser(String),
    #[error("SCRAM proof does not match for {0:?}")]
    /// The client's proof does not verify (wrong password); carries the user name.
    BadProof(String),
}

/// The exchange after the server-first message, waiting for the client-final message.
#[derive(Debug)]
pub struct ScramExchange {
    hash: ScramHash,
    user: String,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Handles the client-first message (`n,,n=user,r=nonce`): returns the server-first message
/// and the exchange state. `lookup` finds the user's credential.
pub fn server_first(
    hash: ScramHash,
    client_first: &[u8],
    server_nonce: &str,
    lookup: impl Fn(&str) -> Option<ScramCredential>,
) -> Result<(String, ScramExchange), ScramError> {
    let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    // gs2-header: a channel-binding flag (only "n" or "y": no binding over plaintext), an
    // optional authzid, then the bare message.
    let mut parts = text.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ScramError::Malformed("client-first needs a gs2 header"));
    };
    if flag != "n" && flag != "y" {
        return Err(ScramError::Malformed("channel binding is not supported"));
    }
    let user = attribute(bare, 'n').ok_or(ScramError::Malformed("client-first lacks n="))?;
    let user = user.replace("=2C", ",").replace("=3D", "=");
    let client_nonce =
        attribute(bare, 'r').ok_or(ScramError::Malformed("client-first lacks r="))?;
    if !authzid.is_empty() && authzid.strip_prefix("a=") != Some(user.as_str()) {
        return Err(ScramError::Malformed(
            "authorization id differs from the user",
        ));
    }
    let credential = lookup(&user).ok_or_else(|| ScramError::UnknownUser(user.clone()))?;
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credential.salt),
        credential.iterations
    );
    let exchange = ScramExchange {
        hash,
        user,
        credential,
        gs2_header: format!("{flag},{authzid},"),
        client_first_bare: bare.to_string(),
        server_first: server_first.clone(),
        nonce,
    };
    Ok((server_first, exchange))
}

impl ScramExchange {
    /// Checks the client-final message (`c=...,r=...,p=proof`); returns the authenticated user
    /// and the server-final message (`v=signature`) the client verifies us with.
    pub fn client_final(self, client_final: &[u8]) -> Result<(String, String), ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("client-final lacks p="))?;
        let binding = attribute(without_proof, 'c').ok_or(ScramError::Malformed("lacks c="))?;
        if binding != BASE64.encode(&self.gs2_header) {
            return Err(ScramError::Malformed(
                "channel binding differs from the gs2 header",
            ));
        }
        if attribute(without_proof, 'r') != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce differs from the server's"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let hash = self.hash;
        let signature = hash.hmac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::BadProof(self.user));
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let matches = hash
            .hash(&client_key)
            .iter()
            .zip(&self.credential.stored_key)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
        if !matches {
            return Err(ScramError::BadProof(self.user));
        }
        let verifier = hash.hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok((self.user, format!("v={}", BASE64.encode(verifier))))
    }
}

/// Why the client side of an exchange gave up: the server's messages do not fit the protocol,
/// or the server could not prove it knows the credential.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramClientError {
    /// The server-first or server-final message is malformed, or carries `e=`.
    #[error("the server's SCRAM message is not valid: {0}")]
    Malformed(String),
    /// The server-final signature does not verify: the server does not hold this credential.
    #[error("the server's SCRAM signature does not verify")]
    BadServerSignature,
}

/// The client's first step: `n,,n=user,r=nonce` sent, waiting for the server-first message.
#[derive(Debug)]
pub struct ClientFirst {
    hash: ScramHash,
    password: String,
    client_first_bare: String,
    nonce: String,
}

/// The client's second step: the client-final message sent, waiting for `v=signature`.
#[derive(Debug)]
pub struct ClientFinal {
    server_signature: Vec<u8>,
}

impl ClientFirst {
    /// Starts an exchange as `user` with a fresh `nonce` (printable, no commas); returns the
    /// state and the client-first message to send.
    pub fn new(hash: ScramHash, user: &str, password: &str, nonce: &str) -> (Self, String) {
        // RFC 5802's saslname: ',' and '=' are escaped, as the server undoes in server_first.
        let name = user.replace('=', "=3D").replace(',', "=2C");
        let bare = format!("n={name},r={nonce}");
        let message = format!("n,,{bare}");
        let state = Self {
            hash,
            password: password.to_string(),
            client_first_bare: bare,
            nonce: nonce.to_string(),
        };
        (state, message)
    }

    /// Handles the server-first message (`r=...,s=...,i=...`): returns the client-final
    /// message with our proof, and the state that checks the server's signature.
    pub fn client_final(
        self,
        server_first: &[u8],
    ) -> Result<(ClientFinal, String), ScramClientError> {
        let bad = |m: &str| ScramClientError::Malformed(m.to_string());
        let text = std::str::from_utf8(server_first).map_err(|_| bad("not UTF-8"))?;
        let nonce = attribute(text, 'r').ok_or_else(|| bad("server-first lacks r="))?;
        // The server extends our nonce; another nonce would be a replayed or foreign exchange.
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(bad("the server's nonce does not extend ours"));
        }
        let salt = attribute(text, 's')
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or_else(|| bad("server-first lacks a base64 s="))?;
        let iterations: u32 = attribute(text, 'i')
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| bad("server-first lacks a numeric i="))?;
        // Kafka's clients refuse fewer rounds too: a server could otherwise make us leak a
        // cheaply brute-forced proof.
        if iterations < ITERATIONS {
            return Err(bad("the server asks for fewer than 4096 iterations"));
        }
        let hash = self.hash;
        let salted = hash.salted_password(&self.password, &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.hash(&client_key);
        // "biws" is base64 of the gs2 header "n,," (no channel binding, no authzid).
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hash.hmac(&salted, b"Server Key");
        let state = ClientFinal {
            server_signature: hash.hmac(&server_key, auth_message.as_bytes()),
        };
        Ok((state, format!("{without_proof},p={}", BASE64.encode(proof))))
    }
}

impl ClientFinal {
    /// Checks the server-final message (`v=signature`, or `e=error`).
    pub fn verify(self, server_final: &[u8]) -> Result<(), ScramClientError> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| ScramClientError::Malformed("not UTF-8".into()))?;
        if let Some(error) = attribute(text, 'e') {
            return Err(ScramClientError::Malformed(format!("server error {error}")));
        }
        let signature = attribute(text, 'v')
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or_else(|| ScramClientError::Malformed("server-final lacks v=".into()))?;
        if signature != self.server_signature {
            return Err(ScramClientError::BadServerSignature);
        }
        Ok(())
    }
}

/// The value of `key=` in a comma-separated SCRAM message.
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn the_rfc_7677_exchange_verifies() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::derive(ScramHash::Sha256, "pencil", salt, 4096);
        let (server_first, exchange) = server_first(
            ScramHash::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            |u| (u == "user").then(|| credential.clone()),
        )
        .unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (user, server_final) = exchange
            .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(user, "user");
        assert_eq!(
            server_final,
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    /// The client side against the server side: a user with '=' and ',' in the name logs in
    /// and the client verifies the server; a wrong password fails the server's proof check.
    #[test]
    fn the_client_side_logs_in_against_the_server_side() {
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            let credential = ScramCredential::derive(hash, "pw", b"salt".to_vec(), 4096);
            let lookup = |u: &str| (u == "a=b,c").then(|| credential.clone());
            let (client, first) = ClientFirst::new(hash, "a=b,c", "pw", "cnonce");
            let (first_answer, exchange) =
                server_first(hash, first.as_bytes(), "snonce", lookup).unwrap();
            let (client, client_final) = client.client_final(first_answer.as_bytes()).unwrap();
            let (user, server_final) = exchange.client_final(client_final.as_bytes()).unwrap();
            assert_eq!(user, "a=b,c");
            client.verify(server_final.as_bytes()).unwrap();

            let (client, first) = ClientFirst::new(hash, "a=b,c", "wrong", "cnonce");
            let (first_answer, exchange) =
                server_first(hash, first.as_bytes(), "snonce", lookup).unwrap();
            let (_, client_final) = client.client_final(first_answer.as_bytes()).unwrap();
            assert!(matches!(
                exchange.client_final(client_final.as_bytes()),
                Err(ScramError::BadProof(_))
            ));
        }
        let (client, _) = ClientFirst::new(ScramHash::Sha256, "u", "pw", "cnonce");
        assert!(client.client_final(b"r=other,s=c2FsdA==,i=4096").is_err());
        let (client, _) = ClientFirst::new(ScramHash::Sha256, "u", "pw", "cnonce");
        assert!(client.client_final(b"r=cnonceX,s=c2FsdA==,i=100").is_err());
    }

    #[test]
    fn a_wrong_proof_or_unknown_user_is_refused() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::derive(ScramHash::Sha256, "other", salt, 4096);
        let (_, exchange) = server_first(
            ScramHash::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            |_| Some(credential.clone()),
        )
        .unwrap();
        assert_eq!(
            exchange
                .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
                .unwrap_err(),
            ScramError::BadProof("user".into())
        );
        assert_eq!(
            server_first(ScramHash::Sha512, b"n,,n=bob,r=x", "y", |_| None).unwrap_err(),
            ScramError::UnknownUser("bob".into())
        );
        assert!(matches!(
            server_first(ScramHash::Sha512, b"p=tls-unique,,n=bob,r=x", "y", |_| None),
            Err(ScramError::Malformed(_))
        ));
    }
}
