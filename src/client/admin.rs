//! Administration calls: topics (create, delete, add partitions), configs (describe,
//! incremental alter) and consumer groups (coordinator lookup, list, describe, delete,
//! committed offsets). Each returns plain data; rendering is the CLI's business.

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::Duration;

use bytes::Buf;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;

use super::connection::Connection;
use super::{Client, ClientError, Result, sb};

/// Server-side wait for topic operations.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// How often and how long to retry while a coordinator is loading.
const COORDINATOR_RETRIES: usize = 20;
const COORDINATOR_BACKOFF: Duration = Duration::from_millis(250);
/// Kafka's ConfigResource types.
pub const RESOURCE_TOPIC: i8 = 2;
/// ConfigResource type of a broker; its resource name is the broker id in decimal.
pub const RESOURCE_BROKER: i8 = 4;

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Topic name; the broker checks it (letters, digits, '.', '_', '-', at most 249).
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic config overrides as (name, value), e.g. (`retention.ms`, `86400000`).
    pub configs: Vec<(String, String)>,
}

/// One config entry as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigEntry {
    /// Config name, e.g. `retention.ms`.
    pub name: String,
    /// Current value; `None` when unset or when the broker hides a sensitive value.
    pub value: Option<String>,
    /// Kafka's ConfigSource name, e.g. `DYNAMIC_TOPIC_CONFIG` or `DEFAULT_CONFIG`;
    /// `UNKNOWN` for a code this client does not know.
    pub source: &'static str,
    /// Whether the config cannot be changed at run time.
    pub read_only: bool,
    /// Whether the value is secret (a password); brokers do not return those.
    pub sensitive: bool,
}

impl ConfigEntry {
    /// Whether the value was set explicitly rather than left at its default.
    pub fn is_override(&self) -> bool {
        !matches!(self.source, "DEFAULT_CONFIG" | "UNKNOWN")
    }
}

/// Kafka's ConfigSource names, as kafka-configs.sh prints them.
fn source_name(code: i8) -> &'static str {
    match code {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One consumer group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedGroup {
    /// Group id.
    pub group: String,
    /// `consumer` for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// State such as `Stable` or `Empty` (ListGroups v4+); `None` when the broker sends none.
    pub state: Option<String>,
    /// `classic` or `consumer` (KIP-848), from ListGroups v5+; `classic` from older brokers.
    pub group_type: String,
}

/// A member of a described group with its decoded assignment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupMember {
    /// Member id the coordinator assigned at JoinGroup.
    pub member_id: String,
    /// Static membership id (`group.instance.id`, KIP-345); `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the coordinator saw it, e.g. `/10.0.0.5`.
    pub client_host: String,
    /// topic -> partitions, from the consumer protocol's assignment bytes.
    pub assignment: BTreeMap<String, Vec<i32>>,
    /// The member's epoch in a consumer-protocol group; `None` in a classic group.
    pub member_epoch: Option<i32>,
}

/// DescribeGroups for one group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupDescription {
    /// Group id as the coordinator reports it.
    pub group: String,
    /// Kafka's group state: Empty, Stable, PreparingRebalance, CompletingRebalance or Dead
    /// (Dead also for a group that does not exist).
    pub state: String,
    /// `consumer` for consumer groups; empty when the group has none.
    pub protocol_type: String,
    /// Assignment protocol the group chose (e.g. `range`); empty unless the group is Stable.
    pub protocol: String,
    /// Broker id of the group's coordinator, which answered.
    pub coordinator: i32,
    /// Current members; empty when no consumer is active.
    pub members: Vec<GroupMember>,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: String,
    /// Group epoch and target assignment epoch of a consumer-protocol group.
    pub epochs: Option<(i32, i32)>,
}

/// Committed offsets: (topic, partition) -> offset.
pub type Offsets = BTreeMap<(String, i32), i64>;

impl Client {
    /// The connection admin requests that need the controller should use; any broker when
    /// the controller is unknown (KRaft brokers forward).
    fn controller(&mut self) -> Result<&mut Connection> {
        let id = self.metadata().controller_id;
        if id >= 0 && self.metadata().brokers.contains_key(&id) {
            self.broker(id)
        } else {
            Ok(self.any())
        }
    }

    /// Creates topics; one result per topic, in request order.
    pub fn create_topics(&mut self, topics: &[NewTopic]) -> Result<Vec<(String, Result<()>)>> {
        let mut request = CreateTopicsRequest::default();
        request.timeout_ms = ADMIN_TIMEOUT_MS;
        request.topics = topics.iter().map(creatable_topic).collect();
        let response = self.controller()?.send(&request, None)?;
        Ok(response
            .topics
            .iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let result = ClientError::check(
                    t.error_code,
                    || format!("creating topic '{name}'"),
                    t.error_message.as_ref(),
                );
                (name, result)
            })
            .collect())
    }

    /// Deletes topics by name; one result per topic.
    pub fn delete_topics(&mut self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let conn = self.controller()?;
        let version = conn.version_for::<DeleteTopicsRequest>(None)?;
        let mut request = DeleteTopicsRequest::default();
        request.timeout_ms = ADMIN_TIMEOUT_MS;
        if version >= 6 {
            request.topics = names
                .iter()
                .map(|n| {
                    let mut t = DeleteTopicState::default();
                    t.name = Some(TopicName(sb(n.as_str())));
                    t
                })
                .collect();
        } else {
            request.topic_names = names.iter().map(|n| TopicName(sb(n.as_str()))).collect();
        }
        let response = conn.send_at(&request, version)?;
        Ok(response
            .responses
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                let result = ClientError::check(
                    t.error_code,
                    || format!("deleting topic '{name}'"),
                    t.error_message.as_ref(),
                );
                (name, result)
            })
            .collect())
    }

    /// Raises the partition count of `topic` to `count`.
    pub fn create_partitions(&mut self, topic: &str, count: i32) -> Result<()> {
        let mut request = CreatePartitionsRequest::default();
        request.timeout_ms = ADMIN_TIMEOUT_MS;
        let mut t = CreatePartitionsTopic::default();
        t.name = TopicName(sb(topic));
        t.count = count;
        request.topics = vec![t];
        let response = self.controller()?.send(&request, None)?;
        for r in &response.results {
            ClientError::check(
                r.error_code,
                || format!("adding partitions to '{topic}'"),
                r.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// The configs of one resource (a topic, or a broker by id), sorted by name.
    pub fn describe_configs(&mut self, resource_type: i8, name: &str) -> Result<Vec<ConfigEntry>> {
        let mut resource = DescribeConfigsResource::default();
        resource.resource_type = resource_type;
        resource.resource_name = sb(name);
        resource.configuration_keys = None;
        let mut request = DescribeConfigsRequest::default();
        request.resources = vec![resource];
        let conn = self.config_connection(resource_type, name)?;
        let response = conn.send(&request, None)?;
        let mut out = Vec::new();
        for result in response.results {
            ClientError::check(
                result.error_code,
                || format!("describing configs of {name}"),
                result.error_message.as_ref(),
            )?;
            out.extend(result.configs.into_iter().map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: source_name(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            }));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Sets configs of one resource with IncrementalAlterConfigs (operation SET).
    pub fn alter_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<()> {
        const OP_SET: i8 = 0;
        const OP_DELETE: i8 = 1;
        let config = |name: &str, op: i8, value: Option<&str>| {
            let mut c = AlterableConfig::default();
            c.name = sb(name);
            c.config_operation = op;
            c.value = value.map(sb);
            c
        };
        let mut resource = AlterConfigsResource::default();
        resource.resource_type = resource_type;
        resource.resource_name = sb(name);
        resource.configs = set
            .iter()
            .map(|(k, v)| config(k, OP_SET, Some(v)))
            .chain(delete.iter().map(|k| config(k, OP_DELETE, None)))
            .collect();
        let mut request = IncrementalAlterConfigsRequest::default();
        request.resources = vec![resource];
        let conn = self.config_connection(resource_type, name)?;
        let response = conn.send(&request, None)?;
        for r in &response.responses {
            ClientError::check(
                r.error_code,
                || format!("altering configs of {name}"),
                r.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// Broker configs must be asked of that broker; topic configs of any broker.
    fn config_connection(&mut self, resource_type: i8, name: &str) -> Result<&mut Connection> {
        match name.parse::<i32>() {
            Ok(id) if resource_type == RESOURCE_BROKER => self.broker(id),
            _ => Ok(self.any()),
        }
    }

    /// The broker coordinating `group`, retrying while coordinators load.
    pub fn coordinator(&mut self, group: &str) -> Result<i32> {
        let mut attempt = 0;
        loop {
            match self.find_coordinator_once(group) {
                Err(e)
                    if attempt < COORDINATOR_RETRIES
                        && e.kafka_error().is_some_and(|k| k.is_retriable()) =>
                {
                    attempt += 1;
                    sleep(COORDINATOR_BACKOFF);
                }
                other => return other,
            }
        }
    }

    fn find_coordinator_once(&mut self, group: &str) -> Result<i32> {
        const KEY_TYPE_GROUP: i8 = 0;
        let conn = self.any();
        let version = conn.version_for::<FindCoordinatorRequest>(None)?;
        let mut request = FindCoordinatorRequest::default();
        if version >= 4 {
            request.coordinator_keys = vec![sb(group)];
        } else {
            request.key = sb(group);
        }
        if version >= 1 {
            request.key_type = KEY_TYPE_GROUP;
        }
        let response = conn.send_at(&request, version)?;
        let context = || format!("finding the coordinator of group '{group}'");
        let (id, host, port) = if version >= 4 {
            let c = response
                .coordinators
                .first()
                .ok_or_else(|| ClientError::Protocol("FindCoordinator returned nothing".into()))?;
            ClientError::check(c.error_code, context, c.error_message.as_ref())?;
            (c.node_id.0, c.host.to_string(), c.port)
        } else {
            ClientError::check(
                response.error_code,
                context,
                response.error_message.as_ref(),
            )?;
            (response.node_id.0, response.host.to_string(), response.port)
        };
        self.broker_at(id, &host, port)?;
        Ok(id)
    }

    /// Every group on every broker, sorted by name.
    pub fn list_groups(&mut self) -> Result<Vec<ListedGroup>> {
        let mut groups = BTreeMap::new();
        for id in self.broker_ids() {
            let response = self.broker(id)?.send(&ListGroupsRequest::default(), None)?;
            ClientError::check(
                response.error_code,
                || format!("listing groups on broker {id}"),
                None,
            )?;
            for g in response.groups {
                let state = Some(g.group_state.to_string()).filter(|s| !s.is_empty());
                let group_type = Some(g.group_type.to_string())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "classic".to_owned());
                let listed = ListedGroup {
                    group: g.group_id.0.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state,
                    group_type,
                };
                groups.insert(listed.group.clone(), listed);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// One group from its coordinator: ConsumerGroupDescribe for a consumer-protocol group
    /// (member epochs, assignments by topic), DescribeGroups for a classic one.
    pub fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let coordinator = self.coordinator(group)?;
        if let Some(described) = self.describe_consumer_group(coordinator, group)? {
            return Ok(described);
        }
        if let Some(described) = self.describe_share_group(coordinator, group)? {
            return Ok(described);
        }
        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![GroupId(sb(group))];
        let response = self.broker(coordinator)?.send(&request, None)?;
        let g = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("DescribeGroups returned nothing".into()))?;
        ClientError::check(
            g.error_code,
            || format!("describing group '{group}'"),
            g.error_message.as_ref(),
        )?;
        let members = g
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                // A non-consumer protocol (Connect, Streams' own) may not decode; show none.
                assignment: decode_assignment(&m.member_assignment).unwrap_or_default(),
                member_epoch: None,
            })
            .collect();
        Ok(GroupDescription {
            group: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            coordinator,
            members,
            group_type: "classic".to_owned(),
            epochs: None,
        })
    }

    /// ConsumerGroupDescribe; `None` when the group is not a consumer group (or the broker
    /// does not speak the API), so the caller asks DescribeGroups.
    fn describe_consumer_group(
        &mut self,
        coordinator: i32,
        group: &str,
    ) -> Result<Option<GroupDescription>> {
        let connection = self.broker(coordinator)?;
        let mut request = ConsumerGroupDescribeRequest::default();
        request.group_ids = vec![GroupId(sb(group))];
        let Ok(response) = connection.send(&request, None) else {
            return Ok(None);
        };
        let Some(g) = response.groups.into_iter().next() else {
            return Ok(None);
        };
        if g.error_code == ResponseError::GroupIdNotFound.code() {
            return Ok(None);
        }
        ClientError::check(
            g.error_code,
            || format!("describing group '{group}'"),
            g.error_message.as_ref(),
        )?;
        let members = g
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: m
                    .assignment
                    .topic_partitions
                    .into_iter()
                    .map(|t| (t.topic_name.0.to_string(), t.partitions))
                    .collect(),
                member_epoch: Some(m.member_epoch),
            })
            .collect();
        Ok(Some(GroupDescription {
            group: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: "consumer".to_owned(),
            protocol: g.assignor_name.to_string(),
            coordinator,
            members,
            group_type: "consumer".to_owned(),
            epochs: Some((g.group_epoch, g.assignment_epoch)),
        }))
    }

    /// Deletes groups (they must be empty); one result per group.
    pub fn delete_groups(&mut self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::new();
        for group in groups {
            let coordinator = self.coordinator(group)?;
            let mut request = DeleteGroupsRequest::default();
            request.groups_names = vec![GroupId(sb(group.as_str()))];
            let response = self.broker(coordinator)?.send(&request, None)?;
            for r in response.results {
                let name = r.group_id.0.to_string();
                let result =
                    ClientError::check(r.error_code, || format!("deleting group '{name}'"), None);
                out.push((name, result));
            }
        }
        Ok(out)
    }

    /// Committed offsets of `group` (all topics when `topics` is `None`). Partitions with no
    /// commit are left out.
    pub fn committed_offsets(
        &mut self,
        group: &str,
        topics: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<Offsets> {
        let coordinator = self.coordinator(group)?;
        let mut request = OffsetFetchRequest::default();
        request.group_id = GroupId(sb(group));
        request.topics = topics.map(|t| {
            t.iter()
                .map(|(name, partitions)| {
                    let mut topic = OffsetFetchRequestTopic::default();
                    topic.name = TopicName(sb(name.as_str()));
                    topic.partition_indexes = partitions.clone();
                    topic
                })
                .collect()
        });
        // v8+ batches groups in a different shape; v1-v7 carry everything we need.
        let response = self.broker(coordinator)?.send(&request, Some(7))?;
        let context = || format!("fetching committed offsets of group '{group}'");
        ClientError::check(response.error_code, context, None)?;
        let mut out = Offsets::new();
        for t in response.topics {
            for p in t.partitions {
                ClientError::check(p.error_code, context, None)?;
                if p.committed_offset >= 0 {
                    out.insert(
                        (t.name.0.to_string(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Commits offsets for `group` as a standalone (non-member) committer, which Kafka
    /// accepts only while the group has no active members.
    pub fn commit_offsets(&mut self, group: &str, offsets: &Offsets) -> Result<()> {
        let coordinator = self.coordinator(group)?;
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition), offset) in offsets {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = *partition;
            p.committed_offset = *offset;
            by_topic.entry(topic).or_default().push(p);
        }
        let mut request = OffsetCommitRequest::default();
        request.group_id = GroupId(sb(group));
        request.generation_id_or_member_epoch = -1;
        request.topics = by_topic
            .into_iter()
            .map(|(name, partitions)| {
                let mut t = OffsetCommitRequestTopic::default();
                t.name = TopicName(sb(name));
                t.partitions = partitions;
                t
            })
            .collect();
        // v10 switches to topic ids.
        let response = self.broker(coordinator)?.send(&request, Some(9))?;
        for t in response.topics {
            for p in t.partitions {
                ClientError::check(
                    p.error_code,
                    || format!("committing offsets of group '{group}'"),
                    None,
                )?;
            }
        }
        Ok(())
    }
}

fn creatable_topic(t: &NewTopic) -> CreatableTopic {
    let mut c = CreatableTopic::default();
    c.name = TopicName(sb(t.name.as_str()));
    c.num_partitions = t.partitions;
    c.replication_factor = t.replication_factor;
    c.configs = t
        .configs
        .iter()
        .map(|(k, v)| {
            let mut cfg = CreatableTopicConfig::default();
            cfg.name = sb(k.as_str());
            cfg.value = Some(sb(v.as_str()));
            cfg
        })
        .collect();
    c
}

/// Decodes the consumer protocol's Assignment: version i16, [topic string, [partition i32]],
/// user data bytes (ignored).
pub fn decode_assignment(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    let mut buf = bytes;
    let mut out = BTreeMap::new();
    if buf.is_empty() {
        return Some(out);
    }
    need(buf, 6)?;
    let _version = buf.get_i16();
    let topics = buf.get_i32();
    for _ in 0..topics.max(0) {
        need(buf, 2)?;
        let len = buf.get_i16();
        need(buf, len.max(0) as usize + 4)?;
        let name = String::from_utf8_lossy(&buf[..len.max(0) as usize]).into_owned();
        buf.advance(len.max(0) as usize);
        let count = buf.get_i32();
        need(buf, count.max(0) as usize * 4)?;
        let partitions = (0..count.max(0)).map(|_| buf.get_i32()).collect();
        out.insert(name, partitions);
    }
    Some(out)
}

fn need(buf: &[u8], n: usize) -> Option<()> {
    (buf.len() >= n).then_some(())
}

/// Whether an error means the broker does not implement an API at all.
pub fn is_unsupported(e: &ClientError) -> bool {
    matches!(e, ClientError::Unsupported { .. })
        || e.kafka_error() == Some(ResponseError::UnsupportedVersion)
}
