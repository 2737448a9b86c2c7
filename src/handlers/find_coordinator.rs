//! FindCoordinator (key 10): names the shard that coordinates a group, i.e. the one owning
//! the group's `__consumer_offsets` partition, as a broker (id, advertised host, that
//! shard's port), so coordinator traffic goes straight to the right core. Any shard can
//! answer: placement is in the node's metadata. v4+ batches keys. Key type 1 names the
//! transaction coordinator: the shard owning the id's `__transaction_state` partition.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::metadata::brokers::advertised_broker;
use crate::shard::Shard;
use crate::shard::{offsets_log, txns};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 6);

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The coordinator shard, as a broker, of each key (one before v4, a batch from v4): for a group
/// the owner of its `__consumer_offsets` partition, for a transactional id (key type 1) the owner
/// of its `__transaction_state` partition.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys = if ctx.version >= 4 {
        request.coordinator_keys.clone()
    } else {
        vec![request.key.clone()]
    };
    let found: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            // DESCRIBE on the group or transactional id, as Kafka checks before looking.
            let denied = match request.key_type {
                KEY_TYPE_GROUP => enforce::group(shard, ctx, Operation::Describe, &key).err(),
                KEY_TYPE_TRANSACTION => {
                    enforce::transactional_id(shard, ctx, Operation::Describe, &key).err()
                }
                _ => None,
            };
            match denied {
                Some(e) => failed(key, e, "Authorization failed."),
                None => find(shard, request.key_type, key, ctx.listener),
            }
        })
        .collect();
    shape(found, ctx.version)
}

/// Before v4 the single coordinator is spread over the top-level fields.
fn shape(mut found: Vec<Coordinator>, version: i16) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = found;
        return response;
    }
    if let Some(one) = found.pop() {
        response.error_code = one.error_code;
        response.error_message = one.error_message;
        response.node_id = one.node_id;
        response.host = one.host;
        response.port = one.port;
    }
    response
}

fn find(shard: &Shard, key_type: i8, key: StrBytes, listener: usize) -> Coordinator {
    match key_type {
        KEY_TYPE_GROUP => {}
        KEY_TYPE_TRANSACTION => {
            return match txns::coordinator_of(shard, key.as_str()) {
                Ok((partition, _)) => located(shard, key, (txns::TXN_TOPIC, partition), listener),
                Err(e) => failed(
                    key,
                    ResponseError::CoordinatorNotAvailable,
                    &format!("cannot create {}: {e}", txns::TXN_TOPIC),
                ),
            };
        }
        other => {
            return failed(
                key,
                ResponseError::InvalidRequest,
                &format!("coordinator key type {other} is not supported"),
            );
        }
    }
    match offsets_log::coordinator_of(shard, key.as_str()) {
        Ok((partition, _)) => located(
            shard,
            key,
            (offsets_log::OFFSETS_TOPIC, partition),
            listener,
        ),
        Err(e) => failed(
            key,
            ResponseError::CoordinatorNotAvailable,
            &format!("cannot create {}: {e}", offsets_log::OFFSETS_TOPIC),
        ),
    }
}

/// The leader of `topic`'s `partition` as a broker (id, advertised host, its shard's port on
/// `listener`), on whichever node it is; COORDINATOR_NOT_AVAILABLE while it has no live leader.
fn located(
    shard: &Shard,
    key: StrBytes,
    (topic, partition): (&str, i32),
    listener: usize,
) -> Coordinator {
    let leader = shard.cluster.topic(topic).and_then(|meta| {
        meta.leadership_at(partition as usize, |core| shard.config.broker_id(core))
    });
    let broker =
        leader.and_then(|l| advertised_broker(&shard.cluster, &shard.config, l.leader, listener));
    let Some(broker) = broker else {
        return failed(
            key,
            ResponseError::CoordinatorNotAvailable,
            &format!("{topic}-{partition} has no live leader"),
        );
    };
    let mut found = Coordinator::default();
    found.key = key;
    found.node_id = BrokerId(broker.id);
    found.host = str_bytes(broker.host);
    found.port = broker.port;
    found
}

fn failed(key: StrBytes, error: ResponseError, message: &str) -> Coordinator {
    let mut out = Coordinator::default();
    out.key = key;
    out.node_id = BrokerId(-1);
    out.port = -1;
    out.error_code = error.code();
    out.error_message = Some(str_bytes(message));
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    fn coordinator(error: Option<ResponseError>) -> Coordinator {
        match error {
            Some(e) => failed(StrBytes::from_static_str("g"), e, "why"),
            None => {
                let mut c = Coordinator::default();
                c.key = StrBytes::from_static_str("g");
                c.node_id = BrokerId(1);
                c.host = StrBytes::from_static_str("127.0.0.1");
                c.port = 9094;
                c
            }
        }
    }

    #[test]
    fn every_advertised_version_encodes_success_and_error() {
        for version in VERSIONS.0..=VERSIONS.1 {
            for error in [None, Some(ResponseError::CoordinatorNotAvailable)] {
                let response = shape(vec![coordinator(error)], version);
                let mut buf = BytesMut::new();
                let encoded = response.encode(&mut buf, version);
                assert!(encoded.is_ok(), "v{version} {error:?}: {encoded:?}");
                if version < 4 {
                    assert_eq!(response.error_code, error.map_or(0, |e| e.code()));
                    assert_eq!(response.port, if error.is_some() { -1 } else { 9094 });
                } else {
                    assert_eq!(response.coordinators.len(), 1);
                }
            }
        }
    }
}
