//! The controller host (issue 13): one std thread, `sluice-controller`, running a current-thread
//! tokio runtime with this node's openraft `Raft`, its CONTROLLER listener and its transport,
//! and the [`ControllerHandle`] the rest of the broker (glommio shards, main) talks to it by.
//!
//! Nothing of openraft or tokio's runtime leaks out of the thread: the handle only holds tokio
//! channels, which work from any executor or plain thread. Writes go through a bounded queue to
//! the thread, which commits them locally or forwards them to the leader, always within a
//! deadline: in openraft 0.9 a leader cut off from its quorum never steps down, so without the
//! deadline its writes would hang forever.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use openraft::{Config, Raft, RaftMetrics, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::network::{ControllerNetwork, FaultPlan};
use super::rpc::{Committed, ForwardError};
use super::server::{Liveness, ServeContext, heartbeat_local, serve, write_local};
use super::status::{QuorumMetrics, metrics_of};
use super::{ControllerNode, MetaLogStore, MetaStateMachine, MetadataMachine, QuorumStoreError};
use crate::config::ClusterConfig;

/// Requests waiting for the controller thread; a full queue makes writers wait (back-pressure).
const QUEUE_DEPTH: usize = 256;
/// Pause before retrying a write while no leader is known or the leader is unreachable.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The quorum's timing and snapshot knobs.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// Leader heartbeat period (openraft `heartbeat_interval`); 200 ms by default.
    pub heartbeat: Duration,
    /// Shortest election timeout (`controller.quorum.election.timeout.ms`); the longest is
    /// twice it, so candidates rarely collide. openraft 0.9 makes a follower that knew a
    /// leader wait its leader lease (the longest timeout) plus a random timeout before it
    /// campaigns, so a failover takes about 3-4 times this (3.3-3.6 s at 1000 ms in tests).
    pub election_timeout: Duration,
    /// One quorum RPC (`controller.quorum.request.timeout.ms`), snapshot chunks included.
    pub request_timeout: Duration,
    /// Overall deadline of one [`ControllerHandle::write`], retries and forwarding included.
    pub write_timeout: Duration,
    /// Snapshot after this many log entries since the last snapshot (openraft
    /// `SnapshotPolicy::LogsSinceLast`).
    pub snapshot_logs: u64,
    /// Log entries kept below a snapshot before purging (openraft
    /// `max_in_snapshot_log_to_keep`): a follower lagging less than this catches up from the
    /// log rather than a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// Links to cut; a test hook, empty in production.
    pub faults: FaultPlan,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(200),
            election_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_millis(2000),
            write_timeout: Duration::from_secs(5),
            snapshot_logs: 10_000,
            logs_kept_after_snapshot: 1000,
            faults: FaultPlan::default(),
        }
    }
}

impl ControllerSettings {
    /// The settings of a KRaft node's configuration: its election and request timeouts, the
    /// rest default.
    #[must_use]
    pub fn from_cluster(cfg: &ClusterConfig) -> Self {
        Self {
            election_timeout: cfg.election_timeout,
            request_timeout: cfg.request_timeout,
            ..Self::default()
        }
    }

    fn raft_config(&self) -> Result<Arc<Config>, ControllerError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = Config {
            cluster_name: "sluice".to_owned(),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_timeout),
            election_timeout_max: ms(self.election_timeout).saturating_mul(2),
            install_snapshot_timeout: ms(self.request_timeout),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            ..Config::default()
        };
        config
            .validate()
            .map(Arc::new)
            .map_err(|e| ControllerError::Config(e.to_string()))
    }
}

/// Why the controller could not start or a write did not commit.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The settings make no valid openraft configuration.
    #[error("invalid controller quorum settings: {0}")]
    Config(String),
    /// The metadata log or state machine could not be opened.
    #[error(transparent)]
    Store(#[from] QuorumStoreError),
    /// The CONTROLLER listener could not be bound.
    #[error("cannot listen on controller endpoint {addr}: {source}")]
    Bind {
        /// The endpoint, `host:port`.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The thread or its runtime could not be created.
    #[error("cannot start the controller thread: {0}")]
    Thread(std::io::Error),
    /// openraft refused to start or to initialize the quorum.
    #[error("controller quorum: {0}")]
    Raft(String),
    /// The controller thread has stopped (shut down or crashed).
    #[error("the controller has stopped")]
    Stopped,
    /// The write did not commit within the write deadline (no leader, or a leader without
    /// its quorum). The command may still commit later: retry only idempotent commands.
    #[error("metadata write did not commit within {0:?}")]
    TimedOut(Duration),
    /// The quorum failed the write (e.g. the leader's storage failed), in words.
    #[error("metadata write failed: {0}")]
    Failed(String),
}

/// A client's command waiting for the controller thread.
struct WriteRequest<M: MetadataMachine> {
    cmd: M::Command,
    reply: oneshot::Sender<Result<Committed<M>, ControllerError>>,
}

/// What the handle asks of the controller thread.
enum Request<M: MetadataMachine> {
    /// Commit a command.
    Write(WriteRequest<M>),
    /// Commit a command only if this node leads (never forwarded).
    WriteHere(WriteRequest<M>),
    /// Tell the leader this node is alive.
    Heartbeat(oneshot::Sender<Result<(), ControllerError>>),
    /// The leader's view of the quorum (DescribeQuorum).
    LeaderStatus(oneshot::Sender<Result<QuorumMetrics, ControllerError>>),
}

/// Where one controller lives and what it starts from: [`Controller::start`]'s arguments.
#[derive(Debug, Clone)]
struct ControllerSpec {
    node_id: u64,
    own: ControllerNode,
    voters: BTreeMap<u64, ControllerNode>,
    dir: PathBuf,
}

/// Starts controllers.
#[derive(Debug)]
pub struct Controller;

impl Controller {
    /// Spawns the `sluice-controller` thread for node `node_id`, opens its metadata log in
    /// `dir` (the node's `__cluster_metadata-0/`), binds its CONTROLLER listener on `own` and
    /// joins the quorum `voters` (every voter by node id, this node included; all nodes must
    /// pass the same map, as `controller.quorum.voters`). On a first
    /// start (empty log) the voter with the lowest id initializes the quorum; the others wait
    /// to hear from it. Returns once the listener is bound and Raft runs.
    ///
    /// # Errors
    /// [`ControllerError`] when the store, the listener, the thread or openraft fails to start.
    pub fn start<M: MetadataMachine>(
        node_id: u64,
        own: ControllerNode,
        voters: BTreeMap<u64, ControllerNode>,
        dir: &Path,
        settings: ControllerSettings,
    ) -> Result<ControllerHandle<M>, ControllerError> {
        let spec = ControllerSpec {
            node_id,
            own,
            voters,
            dir: dir.to_path_buf(),
        };
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let liveness = Arc::new(Liveness::default());
        let thread_liveness = Arc::clone(&liveness);
        let thread = std::thread::Builder::new()
            .name("sluice-controller".to_owned())
            .spawn(move || run_thread(spec, settings, thread_liveness, rx, stop_rx, ready_tx))
            .map_err(ControllerError::Thread)?;
        let Ok(started) = ready_rx.recv() else {
            let _ = thread.join();
            return Err(ControllerError::Stopped);
        };
        let (image, metrics) = match started {
            Ok(pair) => pair,
            Err(e) => {
                let _ = thread.join();
                return Err(e);
            }
        };
        Ok(ControllerHandle {
            node_id,
            tx,
            image,
            metrics,
            liveness,
            stop: Arc::new(Mutex::new(Some((stop_tx, thread)))),
        })
    }
}

/// What the thread hands back once it runs: the image watch and openraft's metrics watch.
type Started<M> = (
    watch::Receiver<Arc<M>>,
    watch::Receiver<RaftMetrics<u64, ControllerNode>>,
);

/// The controller thread's body: a current-thread runtime until shutdown.
fn run_thread<M: MetadataMachine>(
    spec: ControllerSpec,
    settings: ControllerSettings,
    liveness: Arc<Liveness>,
    rx: mpsc::Receiver<Request<M>>,
    stop: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<Result<Started<M>, ControllerError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(ControllerError::Thread(e)));
            return;
        }
    };
    runtime.block_on(async move {
        let (raft, listener, image) = match boot::<M>(&spec, &settings).await {
            Ok(parts) => parts,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if ready.send(Ok((image, raft.metrics()))).is_err() {
            return; // nobody waits for this controller any more
        }
        let ctx = ServeContext {
            write_timeout: settings.write_timeout,
            liveness: Arc::clone(&liveness),
            node_id: spec.node_id,
        };
        let server = tokio::spawn(serve(listener, raft.clone(), ctx.clone()));
        let net = Arc::new(ControllerNetwork::<M>::new(
            spec.node_id,
            &spec.own,
            settings.request_timeout,
            settings.faults.clone(),
        ));
        let request_timeout = settings.request_timeout;
        dispatch(&raft, &net, &ctx, request_timeout, rx, stop).await;
        server.abort();
        if let Err(e) = raft.shutdown().await {
            tracing::warn!("controller Raft did not shut down cleanly: {e}");
        }
    });
    // Dropping the runtime cancels the remaining connection tasks and closes their sockets.
}

/// Opens the stores, binds the listener, starts Raft and initializes a new quorum.
async fn boot<M: MetadataMachine>(
    spec: &ControllerSpec,
    settings: &ControllerSettings,
) -> Result<
    (
        Raft<super::QuorumTypes<M>>,
        TcpListener,
        watch::Receiver<Arc<M>>,
    ),
    ControllerError,
> {
    let config = settings.raft_config()?;
    let log = MetaLogStore::open(&spec.dir)?;
    let sm = MetaStateMachine::<M>::open(&spec.dir)?;
    let image = sm.subscribe();
    let addr = spec.own.to_string();
    let bind_addr: SocketAddr = tokio::net::lookup_host((spec.own.host.as_str(), spec.own.port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ControllerError::Bind {
            addr: addr.clone(),
            source: std::io::Error::other("host resolves to no address"),
        })?;
    let listener = TcpListener::bind(bind_addr)
        .await
        .map_err(|source| ControllerError::Bind { addr, source })?;
    let net = ControllerNetwork::<M>::new(
        spec.node_id,
        &spec.own,
        settings.request_timeout,
        settings.faults.clone(),
    );
    let raft = Raft::new(spec.node_id, config, net, log, sm)
        .await
        .map_err(|e| ControllerError::Raft(e.to_string()))?;
    if spec.voters.keys().next() == Some(&spec.node_id) {
        initialize(&raft, &spec.voters).await?;
    }
    Ok((raft, listener, image))
}

/// Proposes the initial membership. On a restart the node already has a log or a vote and
/// openraft answers `NotAllowed`: that is the normal case, not an error.
async fn initialize<M: MetadataMachine>(
    raft: &Raft<super::QuorumTypes<M>>,
    voters: &BTreeMap<u64, ControllerNode>,
) -> Result<(), ControllerError> {
    use openraft::error::{InitializeError, RaftError};
    match raft.initialize(voters.clone()).await {
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(ControllerError::Raft(e.to_string())),
    }
}

/// Serves the handle's queue until shutdown or until every handle is gone; each write runs as
/// its own task so a slow one does not hold up the others.
async fn dispatch<M: MetadataMachine>(
    raft: &Raft<super::QuorumTypes<M>>,
    net: &Arc<ControllerNetwork<M>>,
    ctx: &ServeContext,
    request_timeout: Duration,
    mut rx: mpsc::Receiver<Request<M>>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { return };
                let (raft, net, ctx) = (raft.clone(), Arc::clone(net), ctx.clone());
                tokio::spawn(async move {
                    // Each reply's receiver may have given up: a failed send is fine.
                    match req {
                        Request::Write(w) => {
                            let out = propose(&raft, &net, ctx.node_id, w.cmd, ctx.write_timeout).await;
                            let _ = w.reply.send(out);
                        }
                        Request::WriteHere(w) => {
                            let out = write_local(&raft, w.cmd, ctx.write_timeout)
                                .await
                                .map_err(|e| ControllerError::Failed(e.to_string()));
                            let _ = w.reply.send(out);
                        }
                        Request::Heartbeat(reply) => {
                            let _ = reply.send(heartbeat(&raft, &net, &ctx, request_timeout).await);
                        }
                        Request::LeaderStatus(reply) => {
                            let _ = reply.send(leader_status(&raft, &net, ctx.node_id, request_timeout).await);
                        }
                    }
                });
            }
            _ = &mut stop => return,
        }
    }
}

/// Records this node's heartbeat with the leader: here if this node leads, else over the wire.
async fn heartbeat<M: MetadataMachine>(
    raft: &Raft<super::QuorumTypes<M>>,
    net: &ControllerNetwork<M>,
    ctx: &ServeContext,
    timeout: Duration,
) -> Result<(), ControllerError> {
    if let Err(fatal) = &raft.metrics().borrow().running_state {
        // This node's metadata no longer changes: it must not renew its lease.
        return Err(ControllerError::Failed(format!(
            "this node's Raft has stopped: {fatal}"
        )));
    }
    let leader = match heartbeat_local(raft, &ctx.liveness, ctx.node_id, timeout).await {
        Ok(()) => return Ok(()),
        Err(ForwardError::NotLeader { leader }) => leader,
        Err(e) => return Err(ControllerError::Failed(e.to_string())),
    };
    let Some((id, node)) = leader.filter(|(id, _)| *id != ctx.node_id) else {
        return Err(ControllerError::Failed(
            "no controller leader known".to_owned(),
        ));
    };
    match net.client(id, &node).heartbeat(ctx.node_id, timeout).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ControllerError::Failed(e.to_string())),
        Err(e) => Err(ControllerError::Failed(e.to_string())),
    }
}

/// The quorum as its leader sees it (here if this node leads).
async fn leader_status<M: MetadataMachine>(
    raft: &Raft<super::QuorumTypes<M>>,
    net: &ControllerNetwork<M>,
    own_id: u64,
    timeout: Duration,
) -> Result<QuorumMetrics, ControllerError> {
    let metrics = raft.metrics().borrow().clone();
    let local = metrics_of(own_id, &metrics);
    let Some(leader) = metrics.current_leader else {
        return Err(ControllerError::Failed(
            "no controller leader known".to_owned(),
        ));
    };
    if leader == own_id {
        return Ok(local);
    }
    let node = metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .cloned()
        .ok_or_else(|| ControllerError::Failed(format!("leader {leader} has no address")))?;
    net.client(leader, &node)
        .status(timeout)
        .await
        .map_err(|e| ControllerError::Failed(e.to_string()))
}

/// Commits `cmd` here if this node leads, else forwards it to the leader; retries while no
/// leader is known or the leader is unreachable, until `timeout` has passed.
async fn propose<M: MetadataMachine>(
    raft: &Raft<super::QuorumTypes<M>>,
    net: &ControllerNetwork<M>,
    own_id: u64,
    cmd: M::Command,
    timeout: Duration,
) -> Result<Committed<M>, ControllerError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ControllerError::TimedOut(timeout));
        }
        let leader = match write_local(raft, cmd.clone(), left).await {
            Ok(done) => return Ok(done),
            Err(ForwardError::TimedOut) => return Err(ControllerError::TimedOut(timeout)),
            Err(ForwardError::Failed(why)) => return Err(ControllerError::Failed(why)),
            Err(ForwardError::NotLeader { leader }) => leader,
        };
        if let Some((id, node)) = leader.filter(|(id, _)| *id != own_id) {
            let left = deadline.saturating_duration_since(Instant::now());
            match net.client(id, &node).forward(cmd.clone(), left).await {
                Ok(Ok(done)) => return Ok(done),
                Ok(Err(ForwardError::TimedOut)) => return Err(ControllerError::TimedOut(timeout)),
                Ok(Err(ForwardError::Failed(why))) => return Err(ControllerError::Failed(why)),
                // Leadership moved or the leader is gone: ask our Raft again after a pause.
                Ok(Err(ForwardError::NotLeader { .. })) | Err(_) => {}
            }
        }
        tokio::time::sleep(RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}

/// The stop signal and thread of a running controller; taken by the first shutdown.
type Running = (oneshot::Sender<()>, JoinHandle<()>);

/// The broker's way to the controller thread: cheap to clone, usable from any thread or
/// executor (glommio shards included), since it holds only tokio channels.
pub struct ControllerHandle<M: MetadataMachine> {
    node_id: u64,
    tx: mpsc::Sender<Request<M>>,
    image: watch::Receiver<Arc<M>>,
    metrics: watch::Receiver<RaftMetrics<u64, ControllerNode>>,
    liveness: Arc<Liveness>,
    stop: Arc<Mutex<Option<Running>>>,
}

impl<M: MetadataMachine> Clone for ControllerHandle<M> {
    fn clone(&self) -> Self {
        Self {
            node_id: self.node_id,
            tx: self.tx.clone(),
            image: self.image.clone(),
            metrics: self.metrics.clone(),
            liveness: Arc::clone(&self.liveness),
            stop: Arc::clone(&self.stop),
        }
    }
}

impl<M: MetadataMachine> std::fmt::Debug for ControllerHandle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControllerHandle(node {})", self.node_id)
    }
}

impl<M: MetadataMachine> ControllerHandle<M> {
    /// Commits `cmd` to the metadata log (forwarded to the leader if need be) and returns its
    /// log index and reply. Runs on any executor: it only awaits tokio channels, and the
    /// deadline is kept by the controller thread.
    ///
    /// # Errors
    /// [`ControllerError::TimedOut`] past the write deadline, [`ControllerError::Stopped`] if
    /// the controller is shut down, [`ControllerError::Failed`] if the quorum failed it.
    pub async fn write(&self, cmd: M::Command) -> Result<Committed<M>, ControllerError> {
        self.ask(|reply| Request::Write(WriteRequest { cmd, reply }))
            .await
    }

    /// Commits `cmd` only through this node's own Raft while it leads the quorum: a command
    /// that must not outlive its proposer's leadership (fencing a node found silent) is never
    /// forwarded to another leader, so a leader cut off from its quorum cannot have it
    /// committed by its successor.
    ///
    /// # Errors
    /// [`ControllerError::Failed`] when this node does not lead or lost the lead before the
    /// command committed; as [`write`](Self::write) otherwise.
    pub async fn write_if_leading(&self, cmd: M::Command) -> Result<Committed<M>, ControllerError> {
        self.ask(|reply| Request::WriteHere(WriteRequest { cmd, reply }))
            .await
    }

    /// Tells the quorum's leader that this node is alive (Kafka's BrokerHeartbeat).
    ///
    /// # Errors
    /// [`ControllerError::Failed`] when no leader is known or it cannot be reached.
    pub async fn heartbeat(&self) -> Result<(), ControllerError> {
        self.ask(Request::Heartbeat).await
    }

    /// The quorum as its leader sees it (replication progress of every voter).
    ///
    /// # Errors
    /// [`ControllerError::Failed`] when no leader is known or it cannot be reached.
    pub async fn leader_status(&self) -> Result<QuorumMetrics, ControllerError> {
        self.ask(Request::LeaderStatus).await
    }

    /// Queues the request `make` builds around a reply channel and awaits the reply.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ControllerError>>) -> Request<M>,
    ) -> Result<T, ControllerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ControllerError::Stopped)?;
        rx.await.map_err(|_| ControllerError::Stopped)?
    }

    /// When node `node` last heartbeated to this node while it led, if ever.
    #[must_use]
    pub fn last_heartbeat(&self, node: u64) -> Option<std::time::Instant> {
        self.liveness.last_seen(node)
    }

    /// Queues `cmd` for the quorum without waiting for the outcome (nothing reports whether it
    /// committed; the caller watches the image). Dropped when the queue is full.
    pub fn submit(&self, cmd: M::Command) {
        let (reply, _ignored) = oneshot::channel();
        if self
            .tx
            .try_send(Request::Write(WriteRequest { cmd, reply }))
            .is_err()
        {
            tracing::debug!("controller queue full or stopped: a background command was dropped");
        }
    }

    /// The latest applied metadata, republished after every applied batch.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<M>> {
        self.image.clone()
    }

    /// The metadata as applied right now.
    #[must_use]
    pub fn image(&self) -> Arc<M> {
        Arc::clone(&self.image.borrow())
    }

    /// The quorum's state as this node sees it now.
    #[must_use]
    pub fn metrics(&self) -> QuorumMetrics {
        metrics_of(self.node_id, &self.metrics.borrow())
    }

    /// Stops the controller thread (Raft, listener, transport) and waits for it to exit.
    /// Later calls, on this handle or its clones, do nothing; their writes fail with
    /// [`ControllerError::Stopped`].
    pub fn shutdown(&self) {
        let taken = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((stop, thread)) = taken {
            let _ = stop.send(());
            if thread.join().is_err() {
                tracing::error!("the controller thread panicked");
            }
        }
    }
}
