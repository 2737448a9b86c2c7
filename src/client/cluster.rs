//! Bootstrap, cluster metadata and routing: the [`Client`] holds one connection per broker,
//! learns who leads each partition from Metadata, and hands out the connection a partition
//! request must go to. A request answered with NOT_LEADER_OR_FOLLOWER is retried by the
//! callers after [`Client::refresh`].

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::connection::{Connection, Credentials};
use super::{ClientError, Result, sb};

/// One broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Broker (node) id; on Sluice each shard is a broker, `node_id * 1000 + core`.
    pub id: i32,
    /// Advertised host name or address.
    pub host: String,
    /// Advertised port (an INT32 in Metadata).
    pub port: i32,
    /// `broker.rack`; `None` when the broker has none.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port` to connect to.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition: leader, replicas, in-sync replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index within its topic.
    pub partition: i32,
    /// Broker id of the leader; -1 when the partition has none.
    pub leader: i32,
    /// Leader epoch (KIP-320); -1 when the broker does not report one (Metadata before v7).
    pub leader_epoch: i32,
    /// Broker ids of all replicas in assignment order; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
    /// Kafka error code the broker reported for this partition; 0 when none.
    pub error_code: i16,
}

/// One topic from Metadata, partitions sorted by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name, also its key in [`Metadata::topics`].
    pub name: String,
    /// Topic id (KIP-516); nil when the broker predates Metadata v10.
    pub id: Uuid,
    /// Whether the broker marks it internal, like `__consumer_offsets`.
    pub internal: bool,
    /// Partitions in index order.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// Replication factor as Kafka's tools report it: the replica count of partition 0.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Cluster id (Metadata v2+); `None` when the broker does not report one.
    pub cluster_id: Option<String>,
    /// Broker id of the controller; -1 when unknown.
    pub controller_id: i32,
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name: only those the last refresh asked for (none right after `connect`), and
    /// none the broker answered with an error for.
    pub topics: BTreeMap<String, TopicInfo>,
}

/// A client bound to one cluster through a bootstrap address.
pub struct Client {
    bootstrap: Connection,
    credentials: Option<Credentials>,
    connections: HashMap<i32, Connection>,
    metadata: Metadata,
}

impl Client {
    /// Connects to the first reachable of the comma-separated bootstrap servers and loads
    /// the broker list.
    pub fn connect(bootstrap: &str, credentials: Option<Credentials>) -> Result<Self> {
        let bootstrap = connect_any(bootstrap, credentials.as_ref())?;
        let mut client = Self {
            bootstrap,
            credentials,
            connections: HashMap::new(),
            metadata: Metadata::default(),
        };
        client.refresh(Some(&[]))?;
        Ok(client)
    }

    /// The bootstrap connection, for requests any broker can answer (Metadata, admin).
    pub fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// The metadata of the last [`Client::refresh`], without asking the broker again.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Reloads metadata for `topics` (`None`: all topics) and returns it.
    pub fn refresh(&mut self, topics: Option<&[String]>) -> Result<&Metadata> {
        let version = self.bootstrap.version_for::<MetadataRequest>(None)?;
        let mut request = MetadataRequest::default();
        request.topics = topics.map(|names| names.iter().map(|n| request_topic(n)).collect());
        if version >= 4 {
            // A tool must never create a topic by looking at it.
            request.allow_auto_topic_creation = false;
        }
        let response = self.bootstrap.send_at(&request, version)?;
        self.metadata = parse_metadata(response);
        Ok(&self.metadata)
    }

    /// Metadata of one topic, refreshed; `UnknownTopic` if the cluster does not have it.
    pub fn topic(&mut self, name: &str) -> Result<TopicInfo> {
        self.refresh(Some(&[name.to_string()]))?;
        self.metadata
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| ClientError::UnknownTopic(name.to_string()))
    }

    /// The connection to broker `id`, opened on first use.
    pub fn broker(&mut self, id: i32) -> Result<&mut Connection> {
        if !self.connections.contains_key(&id) {
            let info = self
                .metadata
                .brokers
                .get(&id)
                .ok_or(ClientError::UnknownBroker(id))?;
            let conn = Connection::connect(&info.addr(), self.credentials.as_ref())?;
            self.connections.insert(id, conn);
        }
        // Invariant: inserted just above when missing.
        Ok(self.connections.get_mut(&id).expect("connection present"))
    }

    /// Connects to `host:port` directly (a coordinator the metadata may not list yet).
    pub fn broker_at(&mut self, id: i32, host: &str, port: i32) -> Result<&mut Connection> {
        self.metadata
            .brokers
            .entry(id)
            .or_insert_with(|| BrokerInfo {
                id,
                host: host.to_string(),
                port,
                rack: None,
            });
        self.broker(id)
    }

    /// The leader of `topic`-`partition` from the cached metadata.
    pub fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        let info = self
            .metadata
            .topics
            .get(topic)
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_string()))?;
        let p = info
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| ClientError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })?;
        if p.leader < 0 {
            return Err(ClientError::NoLeader {
                topic: topic.to_string(),
                partition,
            });
        }
        Ok(p.leader)
    }

    /// Groups partitions of `topic` by their leader, so one request per broker suffices.
    pub fn by_leader(&self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, Vec<i32>>> {
        let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in partitions {
            out.entry(self.leader(topic, p)?).or_default().push(p);
        }
        Ok(out)
    }

    /// Ids of every broker in the cluster, ascending.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.metadata.brokers.keys().copied().collect()
    }
}

/// Tries each `host:port` of a Kafka-style comma-separated list in turn; the last error
/// is reported when none answers.
fn connect_any(list: &str, credentials: Option<&Credentials>) -> Result<Connection> {
    let mut last = None;
    for addr in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match Connection::connect(addr, credentials) {
            Ok(conn) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Protocol("--bootstrap-server is empty".into())))
}

fn request_topic(name: &str) -> MetadataRequestTopic {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(sb(name)));
    t
}

fn parse_metadata(response: MetadataResponse) -> Metadata {
    let brokers = response
        .brokers
        .into_iter()
        .map(|b| {
            let id = b.node_id.0;
            let info = BrokerInfo {
                id,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            };
            (id, info)
        })
        .collect();
    let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect::<Vec<_>>();
    let topics = response
        .topics
        .into_iter()
        // A topic with an error (unknown, being deleted) is reported as absent.
        .filter(|t| t.error_code == 0)
        .filter_map(|t| {
            let name = t.name?.0.to_string();
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: ids(p.replica_nodes),
                    isr: ids(p.isr_nodes),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let info = TopicInfo {
                name: name.clone(),
                id: t.topic_id,
                internal: t.is_internal,
                partitions,
            };
            Some((name, info))
        })
        .collect();
    Metadata {
        cluster_id: response.cluster_id.map(|c| c.to_string()),
        controller_id: response.controller_id.0,
        brokers,
        topics,
    }
}
