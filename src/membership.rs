//! A node's membership in a multi-node cluster, on its own thread (`sluice-membership`, a
//! current-thread tokio runtime; never a shard): it mirrors every image the controller applies
//! into the node's [`Cluster`], registers the node's shards with the quorum, unfences the node
//! once its mirror has caught up with its registration, heartbeats to the active controller
//! (each confirmed heartbeat extends the node's broker lease, `metadata::lease`),
//! and, while this node's controller leads, fences nodes whose heartbeats stopped (Kafka's
//! `broker.session.timeout.ms`; the image then elects new leaders for the partitions the
//! fenced node led) and moves leaders back to their preferred replicas
//! (`auto.leader.rebalance.enable`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::LeaderRebalance;
use crate::metadata::Cluster;
use crate::metadata::command::{MetaCommand, MetaReply};
use crate::metadata::image::ClusterImage;
use crate::metadata::lease::Lease;
use crate::metadata::quorum::ControllerHandle;

/// What the membership thread needs to know about its node.
#[derive(Debug, Clone)]
pub struct MembershipSettings {
    /// Kafka `node.id`.
    pub node_id: i32,
    /// Listener name -> advertised bootstrap `host:port`; `None` for a controller-only node,
    /// which registers nothing.
    pub endpoints: Option<BTreeMap<String, String>>,
    /// Shards (cores) of the node.
    pub shards: u16,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `auto.leader.rebalance.enable` and its interval and threshold; `None` when off.
    pub leader_rebalance: Option<LeaderRebalance>,
    /// This run's registration id: a restart registers anew, so start-up can tell its own
    /// registration from the previous run's in a mirror that has not caught up yet.
    pub incarnation: Uuid,
}

/// Starts the `sluice-membership` thread. It runs until the process exits.
///
/// # Errors
/// The thread could not be spawned.
pub fn start(cluster: Arc<Cluster>, settings: MembershipSettings) -> std::io::Result<()> {
    let controller = cluster
        .controller()
        .cloned()
        .ok_or_else(|| std::io::Error::other("membership needs a node in cluster mode"))?;
    std::thread::Builder::new()
        .name("sluice-membership".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("membership runtime failed to start: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                tokio::spawn(mirror(Arc::clone(&cluster), controller.clone()));
                lifecycle(&cluster, &controller, &settings).await;
            });
        })?;
    Ok(())
}

/// Copies each image the controller publishes into the node's metadata, in order.
async fn mirror(cluster: Arc<Cluster>, controller: ControllerHandle<ClusterImage>) {
    let mut images = controller.subscribe();
    loop {
        let image = Arc::clone(&images.borrow_and_update());
        cluster.install_image(image);
        if images.changed().await.is_err() {
            return; // the controller stopped
        }
    }
}

/// Registration, unfencing, heartbeats and (while leading) fencing, once per heartbeat
/// interval, forever.
async fn lifecycle(
    cluster: &Cluster,
    controller: &ControllerHandle<ClusterImage>,
    settings: &MembershipSettings,
) {
    let incarnation = settings.incarnation;
    // (term, since when) this node's controller has led in that term.
    let mut leading: Option<(u64, Instant)> = None;
    let mut last_rebalance = Instant::now();
    loop {
        if let Some(image) = cluster.image() {
            if let Some(endpoints) = &settings.endpoints {
                keep_registered(controller, settings, endpoints, incarnation, &image).await;
                let sent = Instant::now();
                match controller.heartbeat().await {
                    Ok(()) => cluster.extend_lease(Lease::end_for(sent, settings.session_timeout)),
                    Err(e) => tracing::debug!("heartbeat to the active controller failed: {e}"),
                }
            }
            let metrics = controller.metrics();
            // A new term restarts the count even if this loop never saw the node lose the
            // lead in between: heartbeats went to another leader meanwhile.
            leading = match (metrics.state.is_leader(), leading) {
                (false, _) => None,
                (true, Some((term, since))) if term == metrics.term => Some((term, since)),
                (true, _) => Some((metrics.term, Instant::now())),
            };
            if let Some((_, since)) = leading {
                fence_silent_nodes(controller, settings, &image, since).await;
                if let Some(rebalance) = settings.leader_rebalance
                    && last_rebalance.elapsed() >= rebalance.check_interval
                {
                    last_rebalance = Instant::now();
                    rebalance_leaders(controller, &image, rebalance).await;
                }
            }
        }
        tokio::time::sleep(settings.heartbeat_interval).await;
    }
}

/// Registers this run of the node if the image does not show it, and unfences it once the
/// image (this node's mirror, so it has caught up that far) shows it registered and fenced.
async fn keep_registered(
    controller: &ControllerHandle<ClusterImage>,
    settings: &MembershipSettings,
    endpoints: &BTreeMap<String, String>,
    incarnation: Uuid,
    image: &ClusterImage,
) {
    let command = match image.broker(settings.node_id) {
        Some(reg) if reg.incarnation == incarnation => {
            if !reg.fenced {
                return;
            }
            MetaCommand::UnfenceBroker {
                node_id: settings.node_id,
                broker_epoch: reg.epoch,
            }
        }
        _ => MetaCommand::RegisterBroker {
            node_id: settings.node_id,
            incarnation,
            endpoints: endpoints.clone(),
            shards: settings.shards,
            rack: settings.rack.clone(),
        },
    };
    let kind = command.kind();
    match controller.write(command).await {
        Ok(done) => match done.reply {
            MetaReply::Ok(_) => tracing::info!(node = settings.node_id, "{kind} committed"),
            MetaReply::Err { message, .. } => {
                tracing::warn!(node = settings.node_id, "{kind} refused: {message}");
            }
        },
        Err(e) => tracing::warn!(node = settings.node_id, "{kind} did not commit: {e}"),
    }
}

/// On the leader: fences every unfenced node other than this one that has not heartbeated
/// for the session timeout (counting from when this node became leader, since heartbeats
/// went to the previous leader before).
async fn fence_silent_nodes(
    controller: &ControllerHandle<ClusterImage>,
    settings: &MembershipSettings,
    image: &ClusterImage,
    leading_since: Instant,
) {
    let now = Instant::now();
    for reg in image.live_brokers() {
        if reg.node_id == settings.node_id {
            continue;
        }
        let Ok(node) = u64::try_from(reg.node_id) else {
            continue;
        };
        let last = controller
            .last_heartbeat(node)
            .map_or(leading_since, |t| t.max(leading_since));
        if now.duration_since(last) <= settings.session_timeout {
            continue;
        }
        tracing::warn!(
            node = reg.node_id,
            silent_ms = now.duration_since(last).as_millis() as u64,
            "fencing a node whose heartbeats stopped"
        );
        let fence = MetaCommand::FenceBroker {
            node_id: reg.node_id,
            broker_epoch: reg.epoch,
        };
        // Only while this node still leads: a fence proposed by a leader cut off from its
        // quorum must die with its term, not be forwarded to the new leader, which has been
        // hearing from the node all along.
        if let Err(e) = controller.write_if_leading(fence).await {
            tracing::warn!(node = reg.node_id, "fencing did not commit: {e}");
        }
    }
}

/// On the leader, every `leader.imbalance.check.interval.seconds`: preferred elections for
/// the brokers whose share of partitions led elsewhere is above
/// `leader.imbalance.per.broker.percentage` (the rule is the image's
/// `preferred_leader_changes`). A change that lost a race with another is refused by the
/// partition epoch and tried again at the next check.
async fn rebalance_leaders(
    controller: &ControllerHandle<ClusterImage>,
    image: &ClusterImage,
    rebalance: LeaderRebalance,
) {
    for change in image.preferred_leader_changes(rebalance.imbalance_percent) {
        let described = format!("{change:?}");
        match controller.write(change).await {
            Ok(done) => match done.reply {
                MetaReply::Ok(_) => tracing::info!("preferred leader elected: {described}"),
                MetaReply::Err { message, .. } => {
                    tracing::debug!("preferred leader election refused: {message}");
                }
            },
            Err(e) => tracing::warn!("preferred leader election did not commit: {e}"),
        }
    }
}
