//! The security part of the cluster metadata: ACL bindings, SCRAM credentials and client
//! quotas made with the admin APIs (CreateAcls/DeleteAcls, AlterUserScramCredentials,
//! AlterClientQuotas). One value type with pure
//! changes, embedded both in the single node's metadata file (`cluster.rs`) and in the
//! quorum's image (`image.rs`, changed only by applying `MetaCommand`s), so both modes keep
//! the same state with the same rules. Read by shards through `Cluster`; never on a hot path
//! except through the shard's own copy of the bindings.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::MetadataError;
use super::command::{Applied, MetaCommand};
use crate::acl::{AclBinding, AclFilter};
use crate::protocol::scram::{ScramCredential, ScramHash};
use crate::quota::entity::{QuotaChange, QuotaConfigs};

/// SCRAM credentials of one user, by mechanism.
pub type UserCredentials = BTreeMap<ScramHash, ScramCredential>;

/// ACLs, SCRAM credentials and client quotas (see the module doc). Cheap to clone: each sits
/// behind `Arc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityState {
    /// Every binding, each once, in creation order.
    #[serde(default)]
    pub acls: Arc<Vec<AclBinding>>,
    /// SCRAM credentials by user name; a user without credentials is absent.
    #[serde(default)]
    pub scram: Arc<BTreeMap<String, UserCredentials>>,
    /// Client quotas by entity (absent in metadata written before quotas existed).
    #[serde(default)]
    pub quotas: Arc<QuotaConfigs>,
}

/// One change of AlterUserScramCredentials, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScramChange {
    /// Sets (or replaces) the user's credential for the mechanism.
    Upsert {
        /// User name (without `User:`).
        user: String,
        /// The mechanism.
        mechanism: ScramHash,
        /// Salt, stored key, server key and iterations.
        credential: ScramCredential,
    },
    /// Removes the user's credential for the mechanism (nothing if absent).
    Delete {
        /// User name.
        user: String,
        /// The mechanism.
        mechanism: ScramHash,
    },
}

impl SecurityState {
    /// Adds the bindings not stored yet (creating an existing binding succeeds, as in Kafka).
    pub fn create_acls(&mut self, bindings: &[AclBinding]) {
        let acls = Arc::make_mut(&mut self.acls);
        for b in bindings {
            if !acls.contains(b) {
                acls.push(b.clone());
            }
        }
    }

    /// Removes every binding any filter matches; answers, per filter, the bindings it matched
    /// (a binding two filters match is reported under both, as Kafka does).
    pub fn delete_acls(&mut self, filters: &[AclFilter]) -> Vec<Vec<AclBinding>> {
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| self.acls.iter().filter(|b| f.matches(b)).cloned().collect())
            .collect();
        if matched.iter().any(|m| !m.is_empty()) {
            Arc::make_mut(&mut self.acls).retain(|b| !filters.iter().any(|f| f.matches(b)));
        }
        matched
    }

    /// Applies SCRAM changes in order.
    pub fn alter_scram(&mut self, changes: &[ScramChange]) {
        let users = Arc::make_mut(&mut self.scram);
        for change in changes {
            match change {
                ScramChange::Upsert {
                    user,
                    mechanism,
                    credential,
                } => {
                    users
                        .entry(user.clone())
                        .or_default()
                        .insert(*mechanism, credential.clone());
                }
                ScramChange::Delete { user, mechanism } => {
                    if let Some(creds) = users.get_mut(user) {
                        creds.remove(mechanism);
                        if creds.is_empty() {
                            users.remove(user);
                        }
                    }
                }
            }
        }
    }

    /// Applies client quota changes in order.
    pub fn alter_quotas(&mut self, changes: &[QuotaChange]) {
        Arc::make_mut(&mut self.quotas).apply(changes);
    }

    /// The stored credential of `user` for `mechanism`.
    #[must_use]
    pub fn scram_credential(&self, user: &str, mechanism: ScramHash) -> Option<ScramCredential> {
        self.scram.get(user)?.get(&mechanism).cloned()
    }
}

impl super::Cluster {
    /// Stores ACL bindings: through the quorum in a cluster, in the metadata file on one node.
    ///
    /// # Errors
    /// The quorum's refusal or an I/O error persisting it.
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), MetadataError> {
        if self.is_clustered() {
            self.propose(MetaCommand::CreateAcls { bindings })
                .await
                .map(drop)
        } else {
            self.change_security_local(|s| s.create_acls(&bindings))
        }
    }

    /// Removes the bindings the filters match; answers them per filter.
    ///
    /// # Errors
    /// The quorum's refusal or an I/O error persisting it.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, MetadataError> {
        if !self.is_clustered() {
            return self.change_security_local(|s| s.delete_acls(&filters));
        }
        match self.propose(MetaCommand::DeleteAcls { filters }).await? {
            Applied::AclsDeleted { deleted } => Ok(deleted),
            other => Err(MetadataError::Corrupt(format!(
                "the quorum answered DeleteAcls with {other:?}"
            ))),
        }
    }

    /// Applies SCRAM credential changes.
    ///
    /// # Errors
    /// The quorum's refusal or an I/O error persisting it.
    pub async fn alter_scram(&self, changes: Vec<ScramChange>) -> Result<(), MetadataError> {
        if self.is_clustered() {
            self.propose(MetaCommand::AlterScramCredentials { changes })
                .await
                .map(drop)
        } else {
            self.change_security_local(|s| s.alter_scram(&changes))
        }
    }

    /// Applies client quota changes (AlterClientQuotas).
    ///
    /// # Errors
    /// The quorum's refusal or an I/O error persisting it.
    pub async fn alter_client_quotas(
        &self,
        changes: Vec<QuotaChange>,
    ) -> Result<(), MetadataError> {
        if self.is_clustered() {
            self.propose(MetaCommand::AlterClientQuotas { changes })
                .await
                .map(drop)
        } else {
            self.change_security_local(|s| s.alter_quotas(&changes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{Operation, PatternType, Permission, ResourceType};

    fn binding(name: &str, pattern: PatternType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern,
            principal: "User:a".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn creating_twice_stores_once_and_delete_reports_per_filter() {
        let mut s = SecurityState::default();
        let a = binding("orders", PatternType::Prefixed);
        let b = binding("orders", PatternType::Literal);
        let c = binding("payments", PatternType::Literal);
        s.create_acls(&[a.clone(), b.clone(), a.clone(), c.clone()]);
        assert_eq!(s.acls.len(), 3);
        let filter = AclFilter {
            resource_type: ResourceType::Topic,
            name: Some("orders".into()),
            pattern: PatternType::Match,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        };
        let deleted = s.delete_acls(&[filter.clone(), filter]);
        assert_eq!(deleted, vec![vec![a.clone(), b.clone()], vec![a, b]]);
        assert_eq!(*s.acls, vec![c]);
    }

    #[test]
    fn scram_credentials_round_trip_through_json() {
        let mut s = SecurityState::default();
        let cred =
            ScramCredential::from_salted(ScramHash::Sha256, b"salted", b"salt".to_vec(), 8192);
        s.alter_scram(&[ScramChange::Upsert {
            user: "alice".into(),
            mechanism: ScramHash::Sha256,
            credential: cred.clone(),
        }]);
        let json = serde_json::to_string(&s).expect("encodes");
        assert!(
            !json.contains("salted"),
            "only derived keys are stored: {json}"
        );
        let back: SecurityState = serde_json::from_str(&json).expect("decodes");
        assert_eq!(
            back.scram_credential("alice", ScramHash::Sha256),
            Some(cred)
        );
        assert_eq!(back.scram_credential("alice", ScramHash::Sha512), None);
        s.alter_scram(&[ScramChange::Delete {
            user: "alice".into(),
            mechanism: ScramHash::Sha256,
        }]);
        assert!(s.scram.is_empty(), "a user without credentials is gone");
    }
}
