//! One member's way from the partitions it owns to its target (KIP-848's reconciliation):
//! a member first gives up what its target no longer has, keeping its epoch until its
//! heartbeat shows them gone; only then does it take the new epoch, with the target
//! partitions no other member still holds; the rest follow as the others release them.
//! So no partition is ever owned by two members at once.
//!
//! Pure logic on the group coordinator's shard.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{Assignment, ConsumerMember, MemberState, contains, filter, minus, size};

/// Partitions (topic id, partition) held by the other members.
pub type Held = BTreeSet<(Uuid, i32)>;

/// Moves `member` one step (or as many as it can take now) towards `target`, the group's
/// target for it at `target_epoch`. `owned` is what its heartbeat says it owns (`None` when the
/// heartbeat did not say), `held_by_others` what other members hold. Returns true when the
/// member's epoch, state or partitions changed.
pub fn reconcile(
    member: &mut ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    held_by_others: &Held,
    now_ms: i64,
) -> bool {
    let before = (
        member.member_epoch,
        member.state,
        member.assigned.clone(),
        member.pending_revocation.clone(),
    );
    if member.state == MemberState::UnrevokedPartitions {
        let still_owned = owned.is_none_or(|o| {
            !filter(o, |t, p| contains(&member.pending_revocation, t, p)).is_empty()
        });
        if still_owned {
            return false;
        }
        member.pending_revocation.clear();
        member.revocation_deadline_ms = None;
        member.state = MemberState::Stable;
    }
    let free = |t: Uuid, p: i32| !held_by_others.contains(&(t, p));
    if member.member_epoch != target_epoch {
        let revoke = minus(&member.assigned, target);
        // A member whose request shows it already gave them up (an eager classic member
        // rejoins owning nothing) need not wait a round.
        let gone = owned.is_some_and(|o| filter(o, |t, p| contains(&revoke, t, p)).is_empty());
        if revoke.is_empty() || gone {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = target_epoch;
            member.assigned = filter(target, |t, p| {
                contains(&member.assigned, t, p) || free(t, p)
            });
        } else {
            member.assigned = filter(&member.assigned, |t, p| contains(target, t, p));
            member.pending_revocation = revoke;
            member.state = MemberState::UnrevokedPartitions;
            member.revocation_deadline_ms =
                Some(now_ms + i64::from(member.rebalance_timeout_ms.max(0)));
        }
    } else if member.state == MemberState::UnreleasedPartitions {
        member.assigned = filter(target, |t, p| {
            contains(&member.assigned, t, p) || free(t, p)
        });
    }
    if member.state != MemberState::UnrevokedPartitions {
        member.state = if size(&member.assigned) == size(target) {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }
    before
        != (
            member.member_epoch,
            member.state,
            member.assigned.clone(),
            member.pending_revocation.clone(),
        )
}
