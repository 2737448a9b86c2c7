//! OffsetFetch (key 9): committed offsets of one group (v1-v7) or of several (v8+). A group
//! this shard does not coordinate gets NOT_COORDINATOR (per group from v8). `require_stable`
//! needs no waiting: there are no transactional offset commits yet. As in Kafka, the group
//! needs DESCRIBE, and a topic the principal may not DESCRIBE is left out of an all-offsets
//! answer and answered TOPIC_AUTHORIZATION_FAILED (offset -1) when named. From v9 a member of a
//! KIP-848 consumer group fetches with its member epoch, checked like a commit's.

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
                .and_then(|()| check_member(shard, &request, &group_id))
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

/// v9+ (KIP-848): a member of a consumer group names itself and its epoch; a stale epoch
/// gets STALE_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID. Admin fetches name no member
/// (epoch -1) and are not checked.
fn check_member(
    shard: &Shard,
    request: &OffsetFetchRequest,
    group_id: &str,
) -> Result<(), ResponseError> {
    let Some(asked) = request
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == group_id)
    else {
        return Ok(());
    };
    let member_id = asked
        .member_id
        .as_ref()
        .map(|m| m.as_str())
        .unwrap_or_default();
    if asked.member_epoch < 0 && member_id.is_empty() {
        return Ok(());
    }
    shard.groups.read(|c| {
        let Some(consumer) = c.group(group_id).and_then(|g| g.consumer()) else {
            return Ok(());
        };
        match consumer.member(member_id) {
            None => Err(ResponseError::UnknownMemberId),
            Some(m) if m.member_epoch != asked.member_epoch => Err(ResponseError::StaleMemberEpoch),
            Some(_) => Ok(()),
        }
    })
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
