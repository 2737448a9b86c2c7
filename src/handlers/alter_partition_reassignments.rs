//! AlterPartitionReassignments (key 45, KIP-455): moves partitions' replicas to new brokers,
//! as `kafka-reassign-partitions.sh` and admin clients ask. In a cluster each partition's new
//! target (or its cancellation, a null replica list) is one `ReassignPartition` command through
//! the controller quorum; the new replicas then follow the leader like any follower (their
//! catch-up limited by `follower.replication.throttled.rate` when the topic lists them as
//! throttled), and the quorum completes the move once they are all in the ISR (see
//! `metadata/image/reassignment.rs`). On a single node the only replica of a partition is its
//! shard: a target naming exactly that broker is answered as done, anything else is refused
//! with INVALID_REPLICA_ASSIGNMENT. Runs on the shard that got the request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::{str_bytes, topic_name};
use crate::shard::Shard;

/// v0 and v1 (KIP-860's `allow_replication_factor_change`: false refuses a target of another
/// length with INVALID_REPLICATION_FACTOR; v0 means true).
pub const VERSIONS: (i16, i16) = (0, 1);

/// Why one partition's reassignment was refused.
type Refusal = (ResponseError, String);

/// Starts, replaces or cancels the reassignment of every listed partition; each answered on
/// its own.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut response = AlterPartitionReassignmentsResponse::default();
    if !enforce::cluster_allowed(shard, ctx, Operation::Alter) {
        response.error_code = kafka_protocol::ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    response.allow_replication_factor_change = request.allow_replication_factor_change;
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut answer = ReassignableTopicResponse::default();
        answer.name = topic_name(&name);
        for p in topic.partitions {
            let target = p
                .replicas
                .map(|r| r.into_iter().map(|b| b.0).collect::<Vec<i32>>());
            let outcome = reassign(
                shard,
                &name,
                p.partition_index,
                target,
                request.allow_replication_factor_change,
            )
            .await;
            let mut r = ReassignablePartitionResponse::default();
            r.partition_index = p.partition_index;
            if let Err((error, message)) = outcome {
                r.error_code = error.code();
                r.error_message = Some(str_bytes(message));
            }
            answer.partitions.push(r);
        }
        response.responses.push(answer);
    }
    response
}

async fn reassign(
    shard: &Shard,
    topic: &str,
    p: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<(), Refusal> {
    let unknown = || {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic {topic} has no partition {p}"),
        )
    };
    let meta = shard.topic(topic).ok_or_else(unknown)?;
    let index = usize::try_from(p).map_err(|_| unknown())?;
    let current = meta
        .leadership_at(index, |core| shard.config.broker_id(core))
        .ok_or_else(unknown)?;
    if let Some(target) = &target {
        check_target(target, current.replicas.len(), allow_rf_change)?;
    }
    if !shard.cluster.is_clustered() {
        return single_node(target.as_deref(), &current.replicas);
    }
    tracing::info!(topic, partition = p, from = ?current.replicas, to = ?target, "partition reassignment asked by a client");
    shard
        .cluster
        .propose_reassignment(topic, p, target)
        .await
        .map_err(|e| (e.kafka_error(), e.to_string()))
}

/// Checks a client can get answered without the quorum: a non-empty list of distinct broker
/// ids, of the current length unless replication-factor changes are allowed.
fn check_target(target: &[i32], current_rf: usize, allow_rf_change: bool) -> Result<(), Refusal> {
    let invalid = |m: String| Err((ResponseError::InvalidReplicaAssignment, m));
    if target.is_empty() {
        return invalid("the target replica list is empty".to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(r) = target.iter().find(|r| !seen.insert(**r)) {
        return invalid(format!("broker {r} is listed twice"));
    }
    if !allow_rf_change && target.len() != current_rf {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "the target has {} replicas where the partition has {current_rf}, and the \
                 request does not allow a replication factor change",
                target.len()
            ),
        ));
    }
    Ok(())
}

/// A single node: its one replica per partition cannot move.
fn single_node(target: Option<&[i32]>, current: &[i32]) -> Result<(), Refusal> {
    match target {
        Some(t) if t == current => Ok(()),
        Some(t) => Err((
            ResponseError::InvalidReplicaAssignment,
            format!(
                "Sluice runs as a single node: the partition's only replica is broker {current:?} \
                 and cannot move to {t:?} (reassignment needs cluster mode)"
            ),
        )),
        None => Err((
            ResponseError::NoReassignmentInProgress,
            "no reassignment of this partition is in progress".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_before_the_quorum() {
        assert!(check_target(&[1000, 2000], 2, false).is_ok());
        assert_eq!(
            check_target(&[], 1, true).unwrap_err().0,
            ResponseError::InvalidReplicaAssignment
        );
        assert_eq!(
            check_target(&[1000, 1000], 2, true).unwrap_err().0,
            ResponseError::InvalidReplicaAssignment
        );
        assert_eq!(
            check_target(&[1000, 2000, 3000], 2, false).unwrap_err().0,
            ResponseError::InvalidReplicationFactor
        );
        assert!(check_target(&[1000, 2000, 3000], 2, true).is_ok());
    }

    #[test]
    fn a_single_node_accepts_only_its_own_replica() {
        assert!(single_node(Some(&[0]), &[0]).is_ok());
        assert_eq!(
            single_node(Some(&[1]), &[0]).unwrap_err().0,
            ResponseError::InvalidReplicaAssignment
        );
        assert_eq!(
            single_node(None, &[0]).unwrap_err().0,
            ResponseError::NoReassignmentInProgress
        );
    }
}
