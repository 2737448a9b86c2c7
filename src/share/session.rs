//! Share sessions (KIP-932): what a share consumer fetches from one broker. A session is keyed
//! by group and member, opened by a ShareFetch with epoch 0, carried on with epochs 1, 2, ...
//! (wrapping back to 1), and closed with epoch -1. It holds the partitions the member reads
//! here, so later requests name only what changes.
//!
//! Pure bookkeeping; one table per shard (each shard is a broker to the clients), bounded by
//! `group.share.max.share.sessions`, idle sessions making room for new ones.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use kafka_protocol::ResponseError;
use uuid::Uuid;

/// Epoch of a request that opens a session.
pub const OPEN_EPOCH: i32 = 0;
/// Epoch of a request that closes its session.
pub const CLOSE_EPOCH: i32 = -1;

/// A partition of a session: topic id and index.
pub type SessionPartition = (Uuid, i32);

/// One member's session on this shard.
#[derive(Debug, Clone)]
pub struct Session {
    /// The member, shared with the records it holds.
    pub member: Rc<str>,
    /// The epoch the next request must carry.
    pub next_epoch: i32,
    /// The partitions fetched in this session.
    pub partitions: BTreeSet<SessionPartition>,
    /// Last request, for idle eviction.
    pub last_used_ms: i64,
}

/// The sessions of one shard.
#[derive(Debug, Default)]
pub struct Sessions {
    /// By group, then member: both levels look up with the request's borrowed names.
    by_group: HashMap<String, HashMap<String, Session>>,
    /// Sessions over all groups, for the limit.
    count: usize,
}

impl Sessions {
    /// Opens a session for `member` of `group`, returning the one it replaces (whose records
    /// the caller releases). At the limit, the sessions idle for `idle_ms` are evicted first
    /// (returned as well); SHARE_SESSION_LIMIT_REACHED when none is.
    pub fn open(
        &mut self,
        group: &str,
        member: &str,
        now_ms: i64,
        max: usize,
        idle_ms: i64,
    ) -> Result<Vec<(String, Session)>, ResponseError> {
        let mut ended = Vec::new();
        if let Some(old) = self.close(group, member) {
            ended.push((group.to_owned(), old));
        }
        if self.count >= max {
            ended.extend(self.evict_idle(now_ms, idle_ms));
            if self.count >= max {
                return Err(ResponseError::ShareSessionLimitReached);
            }
        }
        let session = Session {
            member: Rc::from(member),
            next_epoch: 1,
            partitions: BTreeSet::new(),
            last_used_ms: now_ms,
        };
        self.by_group
            .entry(group.to_owned())
            .or_default()
            .insert(member.to_owned(), session);
        self.count += 1;
        Ok(ended)
    }

    /// Removes the sessions idle for `idle_ms`, returning them with their groups.
    fn evict_idle(&mut self, now_ms: i64, idle_ms: i64) -> Vec<(String, Session)> {
        let mut ended = Vec::new();
        for (group, members) in &mut self.by_group {
            let idle: Vec<String> = members
                .iter()
                .filter(|(_, s)| now_ms - s.last_used_ms >= idle_ms)
                .map(|(m, _)| m.clone())
                .collect();
            for member in idle {
                if let Some(s) = members.remove(&member) {
                    ended.push((group.clone(), s));
                }
            }
        }
        self.by_group.retain(|_, members| !members.is_empty());
        self.count -= ended.len();
        ended
    }

    /// Checks a carried-on request's epoch and moves the session to the next one.
    /// SHARE_SESSION_NOT_FOUND without a session, INVALID_SHARE_SESSION_EPOCH on a wrong
    /// epoch (the client then opens a new session).
    pub fn advance(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        now_ms: i64,
    ) -> Result<&mut Session, ResponseError> {
        let session = self
            .get_mut(group, member)
            .ok_or(ResponseError::ShareSessionNotFound)?;
        if epoch != session.next_epoch {
            return Err(ResponseError::InvalidShareSessionEpoch);
        }
        session.next_epoch = match session.next_epoch {
            i32::MAX => 1,
            e => e + 1,
        };
        session.last_used_ms = now_ms;
        Ok(session)
    }

    /// The session, to change its partitions.
    pub fn get_mut(&mut self, group: &str, member: &str) -> Option<&mut Session> {
        self.by_group.get_mut(group)?.get_mut(member)
    }

    /// Ends the session (epoch -1), returning it so its records can be released.
    pub fn close(&mut self, group: &str, member: &str) -> Option<Session> {
        let members = self.by_group.get_mut(group)?;
        let session = members.remove(member)?;
        if members.is_empty() {
            self.by_group.remove(group);
        }
        self.count -= 1;
        Some(session)
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.count
    }

    /// No session is open.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_run_from_one_and_a_wrong_one_is_refused() {
        let mut s = Sessions::default();
        assert!(s.open("g", "m", 0, 10, 1_000).unwrap().is_empty());
        assert!(s.advance("g", "m", 1, 0).is_ok());
        assert_eq!(
            s.advance("g", "m", 1, 0).err(),
            Some(ResponseError::InvalidShareSessionEpoch)
        );
        assert!(s.advance("g", "m", 2, 0).is_ok());
        assert_eq!(
            s.advance("g", "x", 1, 0).err(),
            Some(ResponseError::ShareSessionNotFound)
        );
        assert_eq!(
            s.open("g", "m", 0, 10, 1_000).unwrap().len(),
            1,
            "reopening replaces"
        );
        assert!(s.close("g", "m").is_some());
        assert!(s.is_empty());
    }

    #[test]
    fn the_limit_evicts_idle_sessions_or_refuses() {
        let mut s = Sessions::default();
        s.open("g", "a", 0, 2, 1_000).unwrap();
        s.open("g", "b", 500, 2, 1_000).unwrap();
        assert_eq!(
            s.open("g", "c", 900, 2, 1_000).err(),
            Some(ResponseError::ShareSessionLimitReached)
        );
        let evicted = s.open("g", "c", 1_000, 2, 1_000).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(s.len(), 2);
    }
}
