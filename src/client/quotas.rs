//! Client quota calls (KIP-546): DescribeClientQuotas and AlterClientQuotas, for
//! `sluice configs --entity-type users|clients`. Each returns plain data; rendering is the
//! CLI's business.

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};

use super::{Client, ClientError, Result, sb};

/// An entity as (entity type, name); a `None` name is the default entity.
pub type Entity = Vec<(String, Option<String>)>;

/// Kafka's match types of a DescribeClientQuotas filter component.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// One described entity and its quotas.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuotaEntry {
    /// The entity's components (`user`/`client-id`, name or `None` for the default).
    pub entity: Entity,
    /// Quota keys and values, e.g. (`producer_byte_rate`, 1024.0).
    pub values: Vec<(String, f64)>,
}

/// What a describe filter asks of one entity type.
#[derive(Debug, Clone)]
pub enum Match {
    /// Exactly this name.
    Exact(String),
    /// The default entity.
    Default,
    /// Any name of the type.
    Any,
}

impl Client {
    /// The quotas of the entities matching `filter` (entity type, match); `strict`: no
    /// other entity types than those named.
    pub fn describe_client_quotas(
        &mut self,
        filter: &[(String, Match)],
        strict: bool,
    ) -> Result<Vec<QuotaEntry>> {
        let mut request = DescribeClientQuotasRequest::default();
        request.strict = strict;
        request.components = filter
            .iter()
            .map(|(entity_type, m)| {
                let mut c = ComponentData::default();
                c.entity_type = sb(entity_type.as_str());
                (c.match_type, c._match) = match m {
                    Match::Exact(name) => (MATCH_EXACT, Some(sb(name.as_str()))),
                    Match::Default => (MATCH_DEFAULT, None),
                    Match::Any => (MATCH_SPECIFIED, None),
                };
                c
            })
            .collect();
        let response = self.any().send(&request, None)?;
        ClientError::check(
            response.error_code,
            || "describing client quotas".into(),
            response.error_message.as_ref(),
        )?;
        Ok(response
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| QuotaEntry {
                entity: e
                    .entity
                    .into_iter()
                    .map(|d| {
                        (
                            d.entity_type.to_string(),
                            d.entity_name.map(|n| n.to_string()),
                        )
                    })
                    .collect(),
                values: e
                    .values
                    .into_iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect(),
            })
            .collect())
    }

    /// Sets and removes quotas of one entity.
    pub fn alter_client_quotas(
        &mut self,
        entity: &Entity,
        set: &[(String, f64)],
        remove: &[String],
    ) -> Result<()> {
        let op = |key: &str, value: f64, remove: bool| {
            let mut o = OpData::default();
            o.key = sb(key);
            o.value = value;
            o.remove = remove;
            o
        };
        let mut entry = EntryData::default();
        entry.entity = entity
            .iter()
            .map(|(entity_type, name)| {
                let mut d = EntityData::default();
                d.entity_type = sb(entity_type.as_str());
                d.entity_name = name.as_deref().map(sb);
                d
            })
            .collect();
        entry.ops = set
            .iter()
            .map(|(k, v)| op(k, *v, false))
            .chain(remove.iter().map(|k| op(k, 0.0, true)))
            .collect();
        let mut request = AlterClientQuotasRequest::default();
        request.entries = vec![entry];
        let response = self.any().send(&request, None)?;
        for e in &response.entries {
            ClientError::check(
                e.error_code,
                || "altering client quotas".into(),
                e.error_message.as_ref(),
            )?;
        }
        Ok(())
    }
}
