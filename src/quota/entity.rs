//! Client quota configurations as Kafka names them: an entity (a user, a client id, or both;
//! each either named or the default, Kafka's null name) and its quota keys
//! (`producer_byte_rate`, ...). These are the values the cluster metadata stores
//! (`metadata::security`), the admin APIs change and describe, and the shards resolve with
//! Kafka's precedence (`resolve.rs`). Pure data; used on any thread.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Kafka's entity type of a user quota.
pub const USER: &str = "user";
/// Kafka's entity type of a client-id quota.
pub const CLIENT_ID: &str = "client-id";
/// Kafka's entity type of a connection-rate quota by IP (recognised, not supported).
pub const IP: &str = "ip";

/// Why a quota entity, key or value is refused; each maps to Kafka's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// Kafka answers INVALID_REQUEST for a malformed entity, key or value.
    #[error("{0}")]
    InvalidRequest(String),
    /// Kafka answers UNSUPPORTED_VERSION for an entity type it does not handle; Sluice also
    /// for `ip` (connection-rate quotas are not served).
    #[error("{0}")]
    UnsupportedEntityType(String),
}

impl QuotaError {
    /// The Kafka error a client gets for it.
    #[must_use]
    pub fn kafka_error(&self) -> kafka_protocol::ResponseError {
        match self {
            Self::InvalidRequest(_) => kafka_protocol::ResponseError::InvalidRequest,
            Self::UnsupportedEntityType(_) => kafka_protocol::ResponseError::UnsupportedVersion,
        }
    }
}

/// One component of an entity: a specific name, or Kafka's default (a null name on the wire,
/// `<default>` in `kafka-configs.sh`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    /// The default entity of its type: applies to every name without a quota of its own.
    Default,
    /// A specific user name (without `User:`) or client id.
    Named(String),
}

impl EntityName {
    /// From the wire's nullable name: null is the default.
    #[must_use]
    pub fn from_wire(name: Option<&str>) -> Self {
        name.map_or(Self::Default, |n| Self::Named(n.to_owned()))
    }

    /// The wire's nullable name.
    #[must_use]
    pub fn to_wire(&self) -> Option<&str> {
        match self {
            Self::Default => None,
            Self::Named(n) => Some(n),
        }
    }
}

/// A quota entity: a user, a client id, or a user and a client id (at least one is set).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    /// The `user` component, if the entity has one.
    pub user: Option<EntityName>,
    /// The `client-id` component, if the entity has one.
    pub client_id: Option<EntityName>,
}

impl QuotaEntity {
    /// An entity from its wire components (entity type, nullable name), checked as Kafka's
    /// controller does: known types only, each once, at least one, no IP.
    ///
    /// # Errors
    /// INVALID_REQUEST for an empty or duplicate type, UNSUPPORTED_VERSION for an unknown or
    /// IP type.
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, QuotaError> {
        let mut entity = Self {
            user: None,
            client_id: None,
        };
        for (entity_type, name) in components {
            let slot = match entity_type {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => {
                    return Err(QuotaError::UnsupportedEntityType(
                        "IP connection-rate quotas are not supported by Sluice".into(),
                    ));
                }
                other => {
                    return Err(QuotaError::UnsupportedEntityType(format!(
                        "Unhandled client quota entity type: {other}"
                    )));
                }
            };
            if slot.is_some() {
                return Err(QuotaError::InvalidRequest(format!(
                    "Duplicate {entity_type} quota entity"
                )));
            }
            *slot = Some(EntityName::from_wire(name));
        }
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(QuotaError::InvalidRequest(
                "Invalid empty client quota entity".into(),
            ));
        }
        Ok(entity)
    }

    /// The wire components, user first.
    #[must_use]
    pub fn components(&self) -> Vec<(&'static str, Option<&str>)> {
        let user = self.user.as_ref().map(|n| (USER, n.to_wire()));
        let client = self.client_id.as_ref().map(|n| (CLIENT_ID, n.to_wire()));
        user.into_iter().chain(client).collect()
    }
}

/// A quota key of a user or client-id entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaKey {
    /// Bytes per second a client may produce (request bytes), per shard.
    #[serde(rename = "producer_byte_rate")]
    ProducerByteRate,
    /// Bytes per second a client may fetch (response bytes), per shard.
    #[serde(rename = "consumer_byte_rate")]
    ConsumerByteRate,
    /// Percentage of one shard thread's time the client's requests may take.
    #[serde(rename = "request_percentage")]
    RequestPercentage,
    /// Kafka's KIP-599 rate of topic/partition mutations: stored and described, not enforced.
    #[serde(rename = "controller_mutation_rate")]
    ControllerMutationRate,
}

impl QuotaKey {
    /// Every key, in Kafka's order.
    pub const ALL: [Self; 4] = [
        Self::ProducerByteRate,
        Self::ConsumerByteRate,
        Self::RequestPercentage,
        Self::ControllerMutationRate,
    ];

    /// Kafka's name of the key.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ProducerByteRate => "producer_byte_rate",
            Self::ConsumerByteRate => "consumer_byte_rate",
            Self::RequestPercentage => "request_percentage",
            Self::ControllerMutationRate => "controller_mutation_rate",
        }
    }

    /// The key named `name`.
    ///
    /// # Errors
    /// INVALID_REQUEST, with Kafka's message, for a name no user/client-id quota has.
    pub fn parse(name: &str) -> Result<Self, QuotaError> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| QuotaError::InvalidRequest(format!("Invalid configuration key {name}")))
    }

    /// Checks a value as Kafka's controller does: the byte rates are LONG configs (an
    /// integer), the others DOUBLE. Sluice also refuses a value that is not positive: a zero
    /// bound would make the throttle time infinite.
    ///
    /// # Errors
    /// INVALID_REQUEST saying why.
    pub fn validate(self, value: f64) -> Result<(), QuotaError> {
        let integral = matches!(self, Self::ProducerByteRate | Self::ConsumerByteRate);
        if !value.is_finite() || (integral && value.fract() != 0.0) {
            return Err(QuotaError::InvalidRequest(format!(
                "Proposed value for {} is not {}: {value}",
                self.name(),
                if integral { "an integer" } else { "a number" }
            )));
        }
        if value <= 0.0 {
            return Err(QuotaError::InvalidRequest(format!(
                "Proposed value for {} must be positive: {value}",
                self.name()
            )));
        }
        Ok(())
    }
}

/// A quota value: a finite positive number (checked by [`QuotaKey::validate`]), hence `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaValue(pub f64);

// Values are validated finite, so equality is reflexive.
impl Eq for QuotaValue {}

/// The quota keys set on one entity.
pub type QuotaValues = BTreeMap<QuotaKey, QuotaValue>;

/// One entity's change of AlterClientQuotas, already validated: keys to set, then keys to
/// remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaChange {
    /// The entity changed.
    pub entity: QuotaEntity,
    /// Keys set to a value.
    #[serde(default)]
    pub set: QuotaValues,
    /// Keys removed (back to whatever a less specific entity says).
    #[serde(default)]
    pub remove: Vec<QuotaKey>,
}

/// Every configured entity with its keys; an entity without keys is absent. JSON maps need
/// string keys, so it is stored as a list of `[entity, values]` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaConfigs(pub BTreeMap<QuotaEntity, QuotaValues>);

impl QuotaConfigs {
    /// Applies changes in order; an entity left without keys is dropped.
    pub fn apply(&mut self, changes: &[QuotaChange]) {
        for change in changes {
            let values = self.0.entry(change.entity.clone()).or_default();
            values.extend(change.set.iter().map(|(k, v)| (*k, *v)));
            for key in &change.remove {
                values.remove(key);
            }
            if values.is_empty() {
                self.0.remove(&change.entity);
            }
        }
    }
}

impl Serialize for QuotaConfigs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for QuotaConfigs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs: Vec<(QuotaEntity, QuotaValues)> = Vec::deserialize(d)?;
        Ok(Self(pairs.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> Option<EntityName> {
        Some(EntityName::Named(n.into()))
    }

    #[test]
    fn entities_are_checked_as_kafka_does() {
        let e = QuotaEntity::from_components([(USER, Some("alice")), (CLIENT_ID, None)])
            .expect("valid");
        assert_eq!(e.user, named("alice"));
        assert_eq!(e.client_id, Some(EntityName::Default));
        assert_eq!(
            e.components(),
            vec![(USER, Some("alice")), (CLIENT_ID, None)]
        );
        let dup = QuotaEntity::from_components([(USER, None), (USER, Some("a"))]);
        assert!(matches!(dup, Err(QuotaError::InvalidRequest(_))));
        let unknown = QuotaEntity::from_components([("group", Some("g"))]);
        assert!(matches!(unknown, Err(QuotaError::UnsupportedEntityType(_))));
        assert!(QuotaEntity::from_components([]).is_err());
        let ip = QuotaEntity::from_components([(IP, Some("1.2.3.4"))]);
        assert!(matches!(ip, Err(QuotaError::UnsupportedEntityType(_))));
    }

    #[test]
    fn keys_and_values_are_validated() {
        assert_eq!(
            QuotaKey::parse("producer_byte_rate"),
            Ok(QuotaKey::ProducerByteRate)
        );
        assert!(QuotaKey::parse("producer_bytes_rate").is_err());
        assert!(QuotaKey::ProducerByteRate.validate(1024.0).is_ok());
        assert!(QuotaKey::ProducerByteRate.validate(10.5).is_err());
        assert!(QuotaKey::RequestPercentage.validate(10.5).is_ok());
        assert!(QuotaKey::RequestPercentage.validate(0.0).is_err());
        assert!(QuotaKey::ConsumerByteRate.validate(f64::NAN).is_err());
    }

    #[test]
    fn changes_apply_and_round_trip_through_json() {
        let entity = QuotaEntity {
            user: named("alice"),
            client_id: None,
        };
        let mut configs = QuotaConfigs::default();
        configs.apply(&[QuotaChange {
            entity: entity.clone(),
            set: [
                (QuotaKey::ProducerByteRate, QuotaValue(1024.0)),
                (QuotaKey::RequestPercentage, QuotaValue(50.0)),
            ]
            .into(),
            remove: vec![],
        }]);
        let json = serde_json::to_string(&configs).expect("encodes");
        assert!(json.contains("producer_byte_rate"), "{json}");
        let back: QuotaConfigs = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, configs);
        configs.apply(&[QuotaChange {
            entity,
            set: QuotaValues::new(),
            remove: vec![QuotaKey::ProducerByteRate, QuotaKey::RequestPercentage],
        }]);
        assert!(configs.0.is_empty(), "an entity without keys is dropped");
    }
}
