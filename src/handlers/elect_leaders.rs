//! ElectLeaders (key 43): preferred (type 0) and unclean (type 1) leader elections (KIP-183,
//! KIP-460), as `kafka-leader-election.sh` and admin clients ask for them. In a cluster each
//! election is a partition change through the controller quorum with a new leader epoch:
//! preferred moves the leadership to the first replica when it is in the ISR and does not
//! lead already; unclean gives a leaderless partition to its first live replica (its ISR
//! becomes that replica alone, as Kafka's unclean election does). The answer comes once this
//! node's copy of the metadata shows the change. On a single node every partition already has
//! its only possible leader: ELECTION_NOT_NEEDED. Runs on the shard that got the request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::{str_bytes, topic_name};
use crate::metadata::{Leadership, TopicMeta};
use crate::shard::Shard;

/// v1 adds the election type (KIP-460) and a top-level error, v2 is flexible.
pub const VERSIONS: (i16, i16) = (0, 2);

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

/// Why one partition's election did not happen.
type Refusal = (ResponseError, Option<String>);

/// Elects the asked partitions' leaders; with no list, every partition whose leader is not
/// the one this election type wants (and only those are listed in the answer).
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let mut response = ElectLeadersResponse::default();
    if !enforce::cluster_allowed(shard, ctx, Operation::Alter) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let election = request.election_type;
    if election != PREFERRED && election != UNCLEAN {
        response.error_code = ResponseError::InvalidRequest.code();
        return response;
    }
    let every = request.topic_partitions.is_none();
    let asked: Vec<(String, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        None => all_partitions(shard),
    };
    for (topic, partitions) in asked {
        let mut result = ReplicaElectionResult::default();
        result.topic = topic_name(&topic);
        for p in partitions {
            let outcome = elect(shard, &topic, p, election).await;
            if every && matches!(outcome, Err((ResponseError::ElectionNotNeeded, _))) {
                continue;
            }
            let mut r = PartitionResult::default();
            r.partition_id = p;
            if let Err((error, message)) = outcome {
                r.error_code = error.code();
                r.error_message = message.map(str_bytes);
            }
            result.partition_result.push(r);
        }
        if !result.partition_result.is_empty() || !every {
            response.replica_election_results.push(result);
        }
    }
    response
}

/// Every partition of every topic this shard knows, by topic.
fn all_partitions(shard: &Shard) -> Vec<(String, Vec<i32>)> {
    let mut out: Vec<(String, Vec<i32>)> = shard
        .topics()
        .by_name
        .values()
        .map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect()))
        .collect();
    out.sort();
    out
}

async fn elect(shard: &Shard, topic: &str, p: i32, election: i8) -> Result<(), Refusal> {
    let unknown = || (ResponseError::UnknownTopicOrPartition, None);
    let meta = shard.topic(topic).ok_or_else(unknown)?;
    if p < 0 || p as usize >= meta.partitions.len() {
        return Err(unknown());
    }
    if !shard.cluster.is_clustered() {
        return Err((ResponseError::ElectionNotNeeded, None));
    }
    let l = meta.leadership.get(p as usize).ok_or_else(unknown)?;
    let (leader, isr) = match election {
        PREFERRED => preferred(shard, l)?,
        _ => unclean(shard, l)?,
    };
    propose(shard, &meta, p, l, leader, isr).await
}

/// The first replica, if it is live, in the ISR and does not lead already.
fn preferred(shard: &Shard, l: &Leadership) -> Result<(i32, Vec<i32>), Refusal> {
    let Some(&first) = l.replicas.first() else {
        return Err((ResponseError::PreferredLeaderNotAvailable, None));
    };
    if l.leader == first {
        return Err((ResponseError::ElectionNotNeeded, None));
    }
    if !l.isr.contains(&first) {
        let message = format!("preferred replica {first} is not in the ISR {:?}", l.isr);
        return Err((ResponseError::PreferredLeaderNotAvailable, Some(message)));
    }
    if !is_live(shard, first) {
        // The last ISR member stays in the ISR when its node goes down.
        let message = format!("preferred replica {first} is not on a live node");
        return Err((ResponseError::PreferredLeaderNotAvailable, Some(message)));
    }
    Ok((first, l.isr.clone()))
}

/// For a partition without a leader: its first live replica, alone in the ISR.
fn unclean(shard: &Shard, l: &Leadership) -> Result<(i32, Vec<i32>), Refusal> {
    if l.leader >= 0 {
        return Err((ResponseError::ElectionNotNeeded, None));
    }
    let live = l.replicas.iter().copied().find(|&r| is_live(shard, r));
    match live {
        Some(r) => Ok((r, vec![r])),
        None => Err((ResponseError::EligibleLeadersNotAvailable, None)),
    }
}

fn is_live(shard: &Shard, broker_id: i32) -> bool {
    crate::metadata::brokers::advertised_broker(&shard.cluster, &shard.config, broker_id, 0)
        .is_some()
}

async fn propose(
    shard: &Shard,
    meta: &TopicMeta,
    p: i32,
    l: &Leadership,
    leader: i32,
    isr: Vec<i32>,
) -> Result<(), Refusal> {
    tracing::info!(topic = %meta.name, partition = p, from = l.leader, to = leader, "leader election asked by a client");
    shard
        .cluster
        .propose_partition_change(
            meta.id,
            p,
            leader,
            l.leader_epoch + 1,
            isr,
            l.partition_epoch,
        )
        .await
        .map_err(|e| (e.kafka_error(), Some(e.to_string())))
}
