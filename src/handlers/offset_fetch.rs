//! OffsetFetch (key 9): committed offsets of one group (v1-v7) or of several (v8+). A group
//! this shard does not coordinate gets NOT_COORDINATOR (per group from v8). `require_stable`
//! needs no waiting: there are no transactional offset commits yet. As in Kafka, the group
//! needs DESCRIBE, and a topic the principal may not DESCRIBE is left out of an all-offsets
//! answer and answered TOPIC_AUTHORIZATION_FAILED (offset -1) when named.

use std::rc::Rc;

use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::offsets::FetchedTopic;
use crate::coordinator::group::wire::{self, FetchedGroup};
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};
use kafka_protocol::ResponseError;

/// Versions served: v1 is the oldest version the protocol crate has, v9 its newest.
pub const VERSIONS: (i16, i16) = (1, 9);

/// The committed offsets of the asked group (v1-v7) or groups (v8+), per group NOT_COORDINATOR when
/// another shard coordinates it.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let answers: Vec<FetchedGroup> = wire::offset_fetch_request(&request, ctx.version)
        .into_iter()
        .map(|(group_id, topics)| {
            let result = enforce::group(shard, ctx, Operation::Describe, &group_id)
                .and_then(|()| groups::check_coordinator(shard, &group_id))
                .map(|()| {
                    let fetched = shard
                        .groups
                        .read(|c| c.fetch_offsets(&group_id, topics.as_deref()));
                    authorize_topics(shard, ctx, fetched, topics.is_some())
                });
            (group_id, result)
        })
        .collect();
    wire::offset_fetch_response(&answers, ctx.version)
}

/// Kafka's topic check of OffsetFetch: DESCRIBE on each topic. Named topics the principal may
/// not describe are answered TOPIC_AUTHORIZATION_FAILED with no offset; when every committed
/// offset was asked for they are left out.
fn authorize_topics(
    shard: &Shard,
    ctx: &RequestContext,
    fetched: Vec<FetchedTopic>,
    named: bool,
) -> Vec<FetchedTopic> {
    let may_describe = |name: &str| enforce::topic(shard, ctx, Operation::Describe, name).is_ok();
    if !named {
        return fetched
            .into_iter()
            .filter(|t| may_describe(&t.name))
            .collect();
    }
    fetched
        .into_iter()
        .map(|mut topic| {
            if !may_describe(&topic.name) {
                for p in &mut topic.partitions {
                    p.offset = -1;
                    p.leader_epoch = -1;
                    p.metadata.clear();
                    p.error = Some(ResponseError::TopicAuthorizationFailed);
                }
            }
            topic
        })
        .collect()
}
