//! AlterUserScramCredentials (key 51, KIP-554): sets and deletes users' SCRAM credentials.
//! The client sends the salt, the iteration count and the salted password; the broker keeps
//! only the salt, iterations and the stored and server keys derived from it, in the cluster
//! metadata (the quorum in a cluster, the metadata file on one node), and SASL SCRAM logins
//! use them at once. Refusals are Kafka's: UNSUPPORTED_SASL_MECHANISM for an unknown
//! mechanism, UNACCEPTABLE_CREDENTIAL for an empty name, empty salt or password, or iterations
//! outside 4096..=16384, RESOURCE_NOT_FOUND for deleting a credential that does not exist,
//! DUPLICATE_RESOURCE for a user and mechanism altered twice. A user's alterations are applied
//! together or not at all. Needs ALTER on the cluster. Runs on the shard that received the
//! request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::metadata::security::{ScramChange, SecurityState};
use crate::protocol::scram::{ScramCredential, ScramHash};
use crate::shard::Shard;

/// Versions served: every version the protocol has.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Kafka's iteration bounds for both SCRAM mechanisms.
pub const MIN_ITERATIONS: i32 = 4096;
/// See [`MIN_ITERATIONS`].
pub const MAX_ITERATIONS: i32 = 16384;

type Refusal = (ResponseError, String);

/// One alteration as requested: (user, mechanism code, the change if valid so far).
struct Alteration {
    user: String,
    mechanism: i8,
    change: Result<ScramChange, Refusal>,
}

fn refuse(code: ResponseError, message: &str) -> Result<ScramChange, Refusal> {
    Err((code, message.to_string()))
}

fn mechanism_of(code: i8) -> Result<ScramHash, Refusal> {
    ScramHash::of_code(code).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".to_string(),
        )
    })
}

fn deletion(user: &str, mechanism: i8, current: &SecurityState) -> Result<ScramChange, Refusal> {
    if user.is_empty() {
        return refuse(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        );
    }
    let mechanism = mechanism_of(mechanism)?;
    if current.scram_credential(user, mechanism).is_none() {
        return refuse(
            ResponseError::ResourceNotFound,
            "Attempt to delete a user credential that does not exist",
        );
    }
    Ok(ScramChange::Delete {
        user: user.to_owned(),
        mechanism,
    })
}

fn upsertion(
    user: &str,
    mechanism: i8,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<ScramChange, Refusal> {
    if user.is_empty() {
        return refuse(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        );
    }
    let hash = mechanism_of(mechanism)?;
    if iterations < MIN_ITERATIONS {
        return refuse(ResponseError::UnacceptableCredential, "Too few iterations");
    }
    if iterations > MAX_ITERATIONS {
        return refuse(ResponseError::UnacceptableCredential, "Too many iterations");
    }
    if salt.is_empty() || salted_password.is_empty() {
        return refuse(
            ResponseError::UnacceptableCredential,
            "Salt and salted password must not be empty",
        );
    }
    Ok(ScramChange::Upsert {
        user: user.to_owned(),
        mechanism: hash,
        credential: ScramCredential::from_salted(
            hash,
            salted_password,
            salt.to_vec(),
            iterations.unsigned_abs(),
        ),
    })
}

/// The registry's entry.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let current = shard.cluster.security();
    let mut alterations: Vec<Alteration> = request
        .deletions
        .iter()
        .map(|d| Alteration {
            user: d.name.to_string(),
            mechanism: d.mechanism,
            change: deletion(&d.name, d.mechanism, &current),
        })
        .collect();
    alterations.extend(request.upsertions.iter().map(|u| Alteration {
        user: u.name.to_string(),
        mechanism: u.mechanism,
        change: upsertion(
            &u.name,
            u.mechanism,
            u.iterations,
            &u.salt,
            &u.salted_password,
        ),
    }));
    // Users in first-appearance order, each with its first refusal, if any.
    let mut users: Vec<(String, Option<Refusal>)> = Vec::new();
    for (i, a) in alterations.iter().enumerate() {
        let twice = alterations[..i]
            .iter()
            .any(|b| b.user == a.user && b.mechanism == a.mechanism);
        let refusal = if twice {
            Some((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_string(),
            ))
        } else {
            a.change.as_ref().err().cloned()
        };
        match users.iter_mut().find(|(u, _)| *u == a.user) {
            Some((_, first)) => {
                if first.is_none() {
                    *first = refusal;
                }
            }
            None => users.push((a.user.clone(), refusal)),
        }
    }
    if !enforce::cluster_allowed(shard, ctx, Operation::Alter) {
        for (_, refusal) in &mut users {
            *refusal = Some((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".to_string(),
            ));
        }
    }
    let accepted = |user: &str| users.iter().any(|(u, r)| u == user && r.is_none());
    let changes: Vec<ScramChange> = alterations
        .into_iter()
        .filter(|a| accepted(&a.user))
        .filter_map(|a| a.change.ok())
        .collect();
    let stored = if changes.is_empty() {
        Ok(())
    } else {
        shard.cluster.alter_scram(changes).await
    };
    let mut response = AlterUserScramCredentialsResponse::default();
    response.results = users
        .into_iter()
        .map(|(user, refusal)| {
            let refusal = refusal.or_else(|| {
                stored
                    .as_ref()
                    .err()
                    .map(|e| (e.kafka_error(), e.to_string()))
            });
            let mut r = AlterUserScramCredentialsResult::default();
            r.user = str_bytes(user);
            if let Some((code, message)) = refusal {
                r.error_code = code.code();
                r.error_message = Some(str_bytes(message));
            }
            r
        })
        .collect();
    if stored.is_ok() {
        tracing::info!(principal = %ctx.principal, "SCRAM credentials altered");
    }
    response
}
