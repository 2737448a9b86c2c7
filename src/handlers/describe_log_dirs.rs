//! DescribeLogDirs (key 35): the log directory with the size of every partition this shard
//! hosts, and the filesystem's total and usable bytes. Sizes come from the snapshot each shard
//! publishes once a second for the metrics endpoint, so answering never reaches into another
//! core's logs.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::{str_bytes, topic_name};
use crate::shard::Shard;

/// Versions served: v1 is the oldest version the protocol crate has, v4 its newest.
pub const VERSIONS: (i16, i16) = (1, 4);

/// The data directory with the asked partitions (all when `topics` is null) and their sizes in
/// bytes, from the last published snapshot.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| &*t.topic.0 == topic && t.partitions.contains(&partition)),
    };
    let mut by_topic: std::collections::BTreeMap<String, Vec<DescribeLogDirsPartition>> =
        Default::default();
    // Each shard is a broker of its own and reports the partitions it hosts, as Kafka
    // brokers report their replicas.
    for gauge in crate::metrics::published_partitions(shard.core) {
        if !wanted(&gauge.topic, gauge.partition) {
            continue;
        }
        let mut p = DescribeLogDirsPartition::default();
        p.partition_index = gauge.partition;
        p.partition_size = gauge.size_bytes as i64;
        by_topic.entry(gauge.topic).or_default().push(p);
    }
    let mut dir = DescribeLogDirsResult::default();
    dir.log_dir = str_bytes(shard.config.data_dir.display().to_string());
    dir.topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            let mut t = DescribeLogDirsTopic::default();
            t.name = topic_name(&name);
            t.partitions = partitions;
            t
        })
        .collect();
    if ctx.version >= 4 {
        let (total, usable) = filesystem_bytes(&shard.config.data_dir);
        dir.total_bytes = total;
        dir.usable_bytes = usable;
    }
    let mut response = DescribeLogDirsResponse::default();
    // DESCRIBE on the cluster, as Kafka checks (v3+ carry the error; older ones get nothing).
    if !enforce::cluster_allowed(shard, ctx, Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    response.results = vec![dir];
    response
}

/// Total and available bytes of the filesystem holding `dir`; -1 when unknown.
fn filesystem_bytes(dir: &std::path::Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    // SAFETY: statvfs writes into a zeroed struct we own, given a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &raw mut stat) } != 0 {
        return (-1, -1);
    }
    let block = stat.f_frsize as i64;
    (stat.f_blocks as i64 * block, stat.f_bavail as i64 * block)
}
