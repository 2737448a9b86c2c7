//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802 / RFC 7677), the server side: credentials derived
//! from a password, the server-first message, and the proof check of the client-final message.
//! Pure functions and a two-step exchange state, no I/O; the connection's SASL session drives
//! it through two SaslAuthenticate rounds on the connection's shard. Credentials are derived
//! once at start-up (PBKDF2 is deliberately slow and must not run on a shard per login).

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

    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
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
