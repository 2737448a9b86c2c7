//! The CLI client's view of share groups (KIP-932): ShareGroupDescribe for members and
//! assignments, DescribeShareGroupOffsets for start offsets. Runs on the CLI's thread.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::*;

use super::admin::{GroupDescription, GroupMember, Offsets};
use super::{Client, ClientError, Result, sb};

impl Client {
    /// ShareGroupDescribe at the coordinator; `None` when the group is not a share group (or
    /// the broker does not speak the API).
    pub(super) fn describe_share_group(
        &mut self,
        coordinator: i32,
        group: &str,
    ) -> Result<Option<GroupDescription>> {
        let connection = self.broker(coordinator)?;
        let mut request = ShareGroupDescribeRequest::default();
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
            || format!("describing share group '{group}'"),
            g.error_message.as_ref(),
        )?;
        let members = g
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: None,
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
            protocol_type: "share".to_owned(),
            protocol: g.assignor_name.to_string(),
            coordinator,
            members,
            group_type: "share".to_owned(),
            epochs: Some((g.group_epoch, g.assignment_epoch)),
        }))
    }

    /// A share group's start offset of every partition it has state for: each record below
    /// it is acknowledged or archived.
    pub fn share_group_offsets(&mut self, group: &str) -> Result<Offsets> {
        let coordinator = self.coordinator(group)?;
        let mut asked = DescribeShareGroupOffsetsRequestGroup::default();
        asked.group_id = GroupId(sb(group));
        asked.topics = None;
        let mut request = DescribeShareGroupOffsetsRequest::default();
        request.groups = vec![asked];
        let response = self.broker(coordinator)?.send(&request, None)?;
        let mut out = BTreeMap::new();
        for g in response.groups {
            ClientError::check(
                g.error_code,
                || format!("reading the start offsets of share group '{group}'"),
                g.error_message.as_ref(),
            )?;
            for t in g.topics {
                for p in t.partitions {
                    if p.error_code == 0 && p.start_offset >= 0 {
                        out.insert(
                            (t.topic_name.0.to_string(), p.partition_index),
                            p.start_offset,
                        );
                    }
                }
            }
        }
        Ok(out)
    }
}
