//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554) for `sluice users`.
//! The password never leaves this process: an upsertion carries a random salt and the salted
//! password (PBKDF2), from which the broker derives the keys it keeps.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use serde::Serialize;

use super::{Client, ClientError, Result, sb};
use crate::protocol::scram::ScramHash;

/// One SCRAM credential of a user, as the broker describes it (never salts or keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialInfo {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`; `UNKNOWN` for a code this client does not know.
    pub mechanism: &'static str,
    /// PBKDF2 iterations of the credential.
    pub iterations: i32,
}

/// A credential change for AlterUserScramCredentials.
#[derive(Debug, Clone)]
pub enum ScramAlteration {
    /// Set (or replace) `user`'s credential for `mechanism`.
    Upsert {
        /// User name (the `User:` principal's name).
        user: String,
        /// Hash of the mechanism.
        mechanism: ScramHash,
        /// PBKDF2 iterations (the broker accepts 4096..=16384).
        iterations: i32,
        /// Random salt.
        salt: Vec<u8>,
        /// `Hi(password, salt, iterations)`.
        salted_password: Vec<u8>,
    },
    /// Remove `user`'s credential for `mechanism`.
    Delete {
        /// User name.
        user: String,
        /// Hash of the mechanism.
        mechanism: ScramHash,
    },
}

impl ScramAlteration {
    /// An upsertion from a password: a fresh random salt, then PBKDF2 (slow by design).
    #[must_use]
    pub fn upsert(user: &str, mechanism: ScramHash, password: &str, iterations: i32) -> Self {
        // 32 bytes from two v4 uuids (244 random bits): the crate's random source, as the
        // broker's own salts use; no second RNG dependency for one salt.
        let mut salt = uuid::Uuid::new_v4().as_bytes().to_vec();
        salt.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        // A negative count is refused by the broker; 0 rounds would make PBKDF2 panic.
        let rounds = u32::try_from(iterations).unwrap_or(1).max(1);
        let salted_password = mechanism.salted_password(password, &salt, rounds);
        ScramAlteration::Upsert {
            user: user.to_string(),
            mechanism,
            iterations,
            salt,
            salted_password,
        }
    }
}

impl Client {
    /// The SCRAM credentials of `users` (all users with credentials when empty); per user, its
    /// credentials or the broker's error (RESOURCE_NOT_FOUND for a user without any).
    pub fn describe_scram(
        &mut self,
        users: &[String],
    ) -> Result<Vec<(String, Result<Vec<CredentialInfo>>)>> {
        let mut request = DescribeUserScramCredentialsRequest::default();
        request.users = (!users.is_empty()).then(|| {
            users
                .iter()
                .map(|u| {
                    let mut name = UserName::default();
                    name.name = sb(u.as_str());
                    name
                })
                .collect()
        });
        let response = self.any().send(&request, None)?;
        ClientError::check(
            response.error_code,
            || "describing SCRAM credentials".to_string(),
            response.error_message.as_ref(),
        )?;
        Ok(response
            .results
            .iter()
            .map(|r| {
                let user = r.user.to_string();
                let result = ClientError::check(
                    r.error_code,
                    || format!("describing SCRAM credentials of '{user}'"),
                    r.error_message.as_ref(),
                )
                .map(|()| {
                    r.credential_infos
                        .iter()
                        .map(|c| CredentialInfo {
                            mechanism: ScramHash::of_code(c.mechanism)
                                .map_or("UNKNOWN", ScramHash::mechanism),
                            iterations: c.iterations,
                        })
                        .collect()
                });
                (user, result)
            })
            .collect())
    }

    /// Applies `alterations`; per user, the broker's answer (a user's changes are applied
    /// together or not at all).
    pub fn alter_scram(
        &mut self,
        alterations: &[ScramAlteration],
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut request = AlterUserScramCredentialsRequest::default();
        for a in alterations {
            match a {
                ScramAlteration::Upsert {
                    user,
                    mechanism,
                    iterations,
                    salt,
                    salted_password,
                } => {
                    let mut u = ScramCredentialUpsertion::default();
                    u.name = sb(user.as_str());
                    u.mechanism = mechanism.code();
                    u.iterations = *iterations;
                    u.salt = salt.clone().into();
                    u.salted_password = salted_password.clone().into();
                    request.upsertions.push(u);
                }
                ScramAlteration::Delete { user, mechanism } => {
                    let mut d = ScramCredentialDeletion::default();
                    d.name = sb(user.as_str());
                    d.mechanism = mechanism.code();
                    request.deletions.push(d);
                }
            }
        }
        let response = self.any().send(&request, None)?;
        Ok(response
            .results
            .iter()
            .map(|r| {
                let user = r.user.to_string();
                let result = ClientError::check(
                    r.error_code,
                    || format!("altering SCRAM credentials of '{user}'"),
                    r.error_message.as_ref(),
                );
                (user, result)
            })
            .collect())
    }
}
