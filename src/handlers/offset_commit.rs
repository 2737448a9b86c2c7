//! OffsetCommit (key 8): stores committed offsets in `__consumer_offsets` and answers after
//! the append. Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.
//! v10 (topic ids) is not offered: the protocol crate stops at v9.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::acl::{Operation, enforce};
#[cfg(test)]
use crate::coordinator::group::offsets::TopicErrors;
use crate::coordinator::group::offsets::{self, CommitTopic};
use crate::coordinator::group::wire;
use crate::handlers::request::RequestContext;
use crate::metadata::Cluster;
use crate::shard::{Shard, groups};

/// Versions served: v2 is the oldest version the protocol crate has; v10 (topic ids) is past its
/// newest.
pub const VERSIONS: (i16, i16) = (2, 9);

/// Per partition, stored (after the `__consumer_offsets` append) or the error code; NOT_COORDINATOR
/// for every partition when another shard coordinates the group.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let (group_id, mut commit) = wire::offset_commit_request(&request, ctx.version);
    if let Err(e) = enforce::group(shard, ctx, Operation::Read, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return wire::offset_commit_response(&offsets::uniform_errors(&commit.topics, e));
    }
    // Topics the principal may not READ are answered TOPIC_AUTHORIZATION_FAILED, as in Kafka.
    let (readable, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut commit.topics)
        .into_iter()
        .partition(|t| enforce::topic(shard, ctx, Operation::Read, &t.name).is_ok());
    let (known, unknown) = split_unknown(&shard.cluster, readable);
    commit.topics = known;
    let mut results = Vec::new();
    if !commit.topics.is_empty() {
        let now = crate::now_ms();
        let (stored, effects) = shard
            .groups
            .call(|c| c.commit_offsets(&group_id, &commit, now));
        results = match groups::apply(shard, effects).await {
            Ok(()) => stored,
            Err(e) => offsets::uniform_errors(&commit.topics, e),
        };
    }
    results.extend(offsets::uniform_errors(
        &unknown,
        ResponseError::UnknownTopicOrPartition,
    ));
    results.extend(offsets::uniform_errors(
        &denied,
        ResponseError::TopicAuthorizationFailed,
    ));
    wire::offset_commit_response(&results)
}

/// Splits off the partitions of topics (or partition numbers) the cluster does not have.
fn split_unknown(
    cluster: &Cluster,
    topics: Vec<CommitTopic>,
) -> (Vec<CommitTopic>, Vec<CommitTopic>) {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for topic in topics {
        let count = cluster.topic(&topic.name).map_or(0, |t| t.partitions.len());
        let (ok, missing): (Vec<_>, Vec<_>) = topic
            .partitions
            .into_iter()
            .partition(|p| usize::try_from(p.partition).is_ok_and(|p| p < count));
        for (list, partitions) in [(&mut known, ok), (&mut unknown, missing)] {
            if !partitions.is_empty() {
                list.push(CommitTopic {
                    name: topic.name.clone(),
                    partitions,
                });
            }
        }
    }
    (known, unknown)
}

/// Results for topics the response lists, for tests.
#[cfg(test)]
fn codes(results: &[TopicErrors]) -> Vec<(String, i32, i16)> {
    results
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|(p, e)| (t.name.clone(), *p, e.map_or(0, |e| e.code())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::coordinator::group::offsets::CommitPartition;

    use super::*;

    fn partition(partition: i32) -> CommitPartition {
        CommitPartition {
            partition,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }
    }

    #[test]
    fn unknown_topics_and_partitions_are_split_off() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = Cluster::load_or_init(dir.path(), 1).expect("cluster");
        cluster
            .create_topic("t", 2, BTreeMap::new(), false)
            .expect("create");
        let topics = vec![
            CommitTopic {
                name: "t".to_owned(),
                partitions: vec![partition(0), partition(5), partition(-1)],
            },
            CommitTopic {
                name: "nope".to_owned(),
                partitions: vec![partition(0)],
            },
        ];
        let (known, unknown) = split_unknown(&cluster, topics);
        assert_eq!(known.len(), 1);
        assert_eq!(known[0].partitions, vec![partition(0)]);
        let errors = offsets::uniform_errors(&unknown, ResponseError::UnknownTopicOrPartition);
        assert_eq!(
            codes(&errors),
            vec![
                ("t".to_owned(), 5, 3),
                ("t".to_owned(), -1, 3),
                ("nope".to_owned(), 0, 3)
            ]
        );
    }
}
