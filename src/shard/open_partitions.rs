//! The partitions open on one shard, by topic name and partition index, each with the topic
//! id it was opened for. Owned by the shard (shard thread only). Two levels, so a lookup on
//! the produce and fetch paths borrows the topic name instead of building a `String` key.

use std::collections::HashMap;
use std::rc::Rc;

use crate::storage::log::Partition;

/// One open partition: the topic id it belongs to (a re-created topic gets a new one) and
/// its handle.
pub type OpenPartition = (uuid::Uuid, Rc<Partition>);

/// The open partitions of a shard.
#[derive(Default)]
pub struct OpenPartitions {
    by_topic: HashMap<String, HashMap<i32, OpenPartition>>,
}

impl OpenPartitions {
    /// Partition `partition` of `topic`, if open.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&OpenPartition> {
        self.by_topic.get(topic)?.get(&partition)
    }

    /// Notes `opened` as partition `partition` of `topic`.
    pub fn insert(&mut self, topic: &str, partition: i32, opened: OpenPartition) {
        match self.by_topic.get_mut(topic) {
            Some(partitions) => {
                partitions.insert(partition, opened);
            }
            None => {
                self.by_topic
                    .insert(topic.to_owned(), HashMap::from([(partition, opened)]));
            }
        }
    }

    /// Forgets partition `partition` of `topic`, returning it if it was open.
    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<OpenPartition> {
        let partitions = self.by_topic.get_mut(topic)?;
        let removed = partitions.remove(&partition);
        if partitions.is_empty() {
            self.by_topic.remove(topic);
        }
        removed
    }

    /// Every open partition: (topic, partition, topic id, handle), cloned so no borrow is
    /// held across an await.
    pub fn all(&self) -> Vec<(String, i32, uuid::Uuid, Rc<Partition>)> {
        self.by_topic
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(|(p, (id, handle))| (topic.clone(), *p, *id, Rc::clone(handle)))
            })
            .collect()
    }

    /// Every open partition's handle.
    pub fn handles(&self) -> impl Iterator<Item = &Rc<Partition>> {
        self.by_topic
            .values()
            .flat_map(|partitions| partitions.values().map(|(_, p)| p))
    }

    /// How many partitions are open.
    pub fn len(&self) -> usize {
        self.by_topic.values().map(HashMap::len).sum()
    }

    /// True when none is open.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}
