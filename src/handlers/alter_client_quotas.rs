//! AlterClientQuotas (key 49, KIP-546): sets and removes client quotas (`producer_byte_rate`,
//! `consumer_byte_rate`, `request_percentage`, `controller_mutation_rate`) of user and
//! client-id entities, stored in the cluster metadata (the quorum in a cluster, the metadata
//! file on one node). Each entry is validated as Kafka's controller does and answered on its
//! own; `validate_only` stores nothing. Needs ALTER_CONFIGS on the cluster. Runs on the shard
//! that received the request; every shard picks the change up with the metadata version.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_client_quotas_request::EntryData;
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData, EntryData as EntryResult,
};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::quota::entity::{QuotaChange, QuotaEntity, QuotaError, QuotaKey, QuotaValue};
use crate::shard::Shard;

/// Versions served: every version the protocol has (v1 is flexible).
pub const VERSIONS: (i16, i16) = (0, 1);

/// One request entry as a validated change (Kafka's `ClientQuotaControlManager` checks).
///
/// # Errors
/// The entity's or an op's refusal.
pub fn change_of(entry: &EntryData) -> Result<QuotaChange, QuotaError> {
    let entity = QuotaEntity::from_components(entry.entity.iter().map(|e| {
        (
            e.entity_type.as_str(),
            e.entity_name.as_ref().map(|n| n.as_str()),
        )
    }))?;
    let mut change = QuotaChange {
        entity,
        set: Default::default(),
        remove: Vec::new(),
    };
    for op in &entry.ops {
        let key = QuotaKey::parse(&op.key)?;
        // Later ops on the same key win, as Kafka's map of ops has it.
        change.remove.retain(|k| *k != key);
        change.set.remove(&key);
        if op.remove {
            change.remove.push(key);
        } else {
            key.validate(op.value)?;
            change.set.insert(key, QuotaValue(op.value));
        }
    }
    Ok(change)
}

fn result(entry: &EntryData, error: Option<(ResponseError, String)>) -> EntryResult {
    let mut r = EntryResult::default();
    r.entity = entry
        .entity
        .iter()
        .map(|e| {
            let mut d = EntityData::default();
            d.entity_type = e.entity_type.clone();
            d.entity_name = e.entity_name.clone();
            d
        })
        .collect();
    if let Some((code, message)) = error {
        r.error_code = code.code();
        r.error_message = Some(str_bytes(message));
    }
    r
}

/// The registry's entry.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let mut response = AlterClientQuotasResponse::default();
    if !enforce::cluster_allowed(shard, ctx, Operation::AlterConfigs) {
        let refused = (
            ResponseError::ClusterAuthorizationFailed,
            format!("{} may not AlterConfigs the cluster", ctx.principal),
        );
        response.entries = request
            .entries
            .iter()
            .map(|e| result(e, Some(refused.clone())))
            .collect();
        return response;
    }
    let changes: Vec<Result<QuotaChange, QuotaError>> =
        request.entries.iter().map(change_of).collect();
    let valid: Vec<QuotaChange> = changes.iter().filter_map(|c| c.clone().ok()).collect();
    let stored = if valid.is_empty() || request.validate_only {
        Ok(())
    } else {
        shard.cluster.alter_client_quotas(valid).await
    };
    if stored.is_ok() && !request.validate_only {
        tracing::info!(principal = %ctx.principal, entries = changes.len(), "client quotas altered");
    }
    response.entries = request
        .entries
        .iter()
        .zip(changes)
        .map(|(entry, change)| match (change, &stored) {
            (Err(e), _) => result(entry, Some((e.kafka_error(), e.to_string()))),
            (Ok(_), Err(e)) => result(entry, Some((e.kafka_error(), e.to_string()))),
            (Ok(_), Ok(())) => result(entry, None),
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, OpData};
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, f64, bool)]) -> EntryData {
        let mut e = EntryData::default();
        e.entity = entity
            .iter()
            .map(|(t, n)| {
                let mut d = EntityData::default();
                d.entity_type = str_bytes(*t);
                d.entity_name = n.map(str_bytes);
                d
            })
            .collect();
        e.ops = ops
            .iter()
            .map(|(k, v, remove)| {
                let mut o = OpData::default();
                o.key = str_bytes(*k);
                o.value = *v;
                o.remove = *remove;
                o
            })
            .collect();
        e
    }

    #[test]
    fn entries_become_changes_or_kafkas_errors() {
        let ok = entry(
            &[("user", Some("alice")), ("client-id", None)],
            &[
                ("producer_byte_rate", 1024.0, false),
                ("request_percentage", 0.0, true),
            ],
        );
        let change = change_of(&ok).expect("valid");
        assert_eq!(
            change.set.get(&QuotaKey::ProducerByteRate),
            Some(&QuotaValue(1024.0))
        );
        assert_eq!(change.remove, vec![QuotaKey::RequestPercentage]);
        let unknown_key = entry(&[("user", None)], &[("bytes_per_second", 1.0, false)]);
        let e = change_of(&unknown_key).expect_err("unknown key");
        assert_eq!(e.kafka_error(), ResponseError::InvalidRequest);
        let fraction = entry(
            &[("client-id", Some("a"))],
            &[("consumer_byte_rate", 1.5, false)],
        );
        assert!(change_of(&fraction).is_err());
        let bad_type = entry(&[("topic", Some("t"))], &[]);
        let e = change_of(&bad_type).expect_err("unknown type");
        assert_eq!(e.kafka_error(), ResponseError::UnsupportedVersion);
    }

    #[test]
    fn requests_round_trip_through_the_wire_format() {
        for version in VERSIONS.0..=VERSIONS.1 {
            let mut request = AlterClientQuotasRequest::default();
            request.entries = vec![entry(
                &[("user", None), ("client-id", Some("app"))],
                &[("producer_byte_rate", 204_800.0, false)],
            )];
            request.validate_only = true;
            let mut buf = BytesMut::new();
            request.encode(&mut buf, version).expect("encodes");
            let bytes = buf.freeze();
            crate::protocol::request_shapes::check(49, version, &bytes).expect("in bounds");
            let back =
                AlterClientQuotasRequest::decode(&mut bytes.clone(), version).expect("decodes");
            assert_eq!(back, request, "v{version}");
        }
    }
}
