//! The cluster image as the quorum's state machine: committed metadata commands are applied to
//! a [`ClusterImage`] by `quorum::MetaStateMachine` on the controller thread, which snapshots it
//! and publishes each new image to its watchers (the shards, once the node runs the quorum).

use super::command::{Applied, MetaCommand, MetaReply};
use super::image::{ClusterImage, LogPosition};
use super::quorum::{MetadataMachine, SnapshotError};

impl Default for MetaReply {
    /// The reply of log entries that carry no command (openraft's blank and membership entries).
    fn default() -> Self {
        MetaReply::Ok(Applied::Done)
    }
}

impl MetadataMachine for ClusterImage {
    type Command = MetaCommand;
    type Reply = MetaReply;

    fn apply(&mut self, cmd: &MetaCommand, index: u64, term: u64) -> MetaReply {
        ClusterImage::apply(self, cmd, LogPosition { index, term })
    }

    fn to_snapshot(&self) -> Vec<u8> {
        // The image holds only strings, numbers and maps with string or integer keys, which
        // JSON always encodes; a failure here is a bug in the image's types.
        self.to_snapshot_bytes()
            .expect("a cluster image always encodes as JSON")
    }

    fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        ClusterImage::from_snapshot_bytes(bytes).map_err(|e| SnapshotError {
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_image_round_trips_through_the_machine_trait() {
        let mut image = ClusterImage::new();
        let cmd = MetaCommand::AlterBrokerConfigs {
            set: BTreeMap::from([("log.retention.ms".to_string(), "1000".to_string())]),
            delete: Default::default(),
        };
        let reply = MetadataMachine::apply(&mut image, &cmd, 3, 1);
        assert_eq!(reply, MetaReply::default());
        assert_eq!(image.applied(), LogPosition { index: 3, term: 1 });
        let restored = <ClusterImage as MetadataMachine>::from_snapshot(&image.to_snapshot())
            .expect("restores");
        assert_eq!(restored, image);
        assert!(<ClusterImage as MetadataMachine>::from_snapshot(b"nope").is_err());
    }
}
