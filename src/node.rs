//! Node start-up and shutdown, on the main thread: lock the data directory, load cluster
//! metadata, start one pinned glommio executor per core (each a shard with its own
//! listener), wait until all are ready, then wait for SIGTERM/SIGINT and stop them in order:
//! stop accepting, let in-flight requests finish, flush and close files. A shard whose thread
//! ends while the node runs (a panic that unwound its executor) is fatal: the other shards are
//! stopped and the process exits non-zero naming the shard, rather than serving half a node
//! whose dead ports still accept TCP but never answer.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

use crate::config::BrokerConfig;
use crate::metadata::{Cluster, MetadataError, PartitionLimit};
use crate::server;
use crate::shard::Shard;
use crate::shard::mailbox::Mailbox;
use crate::shard::txns::{ShardAnswer, ShardRequest};

type MailboxEnds = crate::shard::mailbox::MailboxEnds<ShardRequest, ShardAnswer>;
use crate::storage::fd_budget::FdBudget;
use crate::storage::lock::{DirLock, LockError};

/// Why the node could not start or stopped abnormally; `main` reports it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is locked by another Sluice process, or cannot be locked.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The cluster metadata in the data directory could not be loaded or initialized.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A thread (shard executor or signal thread) could not be started, or the mailbox mesh was
    /// short of a core.
    #[error("cannot start shard executor: {0}")]
    Executor(String),
    /// A shard failed during start-up; the message names it and says why.
    #[error("shard failed to start: {0}")]
    Shard(String),
    /// A listen address could not be resolved or bound; carries it (and the error, if any).
    #[error("cannot listen on {0}")]
    Address(String),
    /// A shard's thread ended while the node was running; the other shards were stopped.
    #[error("shard {core} {} while the node was running", if *.panicked { "panicked" } else { "stopped" })]
    ShardDied {
        /// Core of the shard whose thread ended.
        core: usize,
        /// It ended by a panic; otherwise its executor returned.
        panicked: bool,
    },
    /// A shard's thread panicked during a graceful shutdown; carries its core.
    #[error("shard {0} panicked during shutdown")]
    ShardPanickedAtShutdown(usize),
    /// An I/O error while starting, e.g. raising the open-file limit or writing
    /// `meta.properties`.
    #[error("i/o error during start-up: {0}")]
    Io(#[from] std::io::Error),
    /// A TLS listener's keystore or truststore cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The node could not join its multi-node cluster (or its roles are not supported).
    #[error(transparent)]
    Join(#[from] crate::cluster_start::JoinError),
    /// The partitions placed on this node need more files than the open-file limit allows.
    #[error(
        "{partitions} partitions are placed on this node but it can serve at most {max}: {hint}"
    )]
    TooManyPartitions {
        /// Partitions placed on this node.
        partitions: usize,
        /// Most partitions the open-file limit lets the node keep open.
        max: usize,
        /// How to raise the limit.
        hint: String,
    },
}

/// How often a shard checks for shutdown and applies control-plane changes.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(50);
/// How often replicated partitions' high watermarks are checkpointed: Kafka's
/// `replica.high.watermark.checkpoint.interval.ms` default.
const HW_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// How often a shard publishes its partitions' sizes for the metrics endpoint.
const METRICS_PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// After a shard died, how long the others get to stop cleanly before the process exits.
const FATAL_STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a shard waits for in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the node on the calling (main) thread until SIGTERM/SIGINT: `Ok` after a clean shutdown; an
/// error when start-up fails, a shard dies, or one panics while stopping.
pub fn run(config: BrokerConfig) -> Result<(), StartError> {
    if config
        .cluster
        .as_ref()
        .is_some_and(|c| !c.roles.is_controller())
    {
        return Err(crate::cluster_start::JoinError::BrokerOnly.into());
    }
    // Blocked before any thread starts (the controller's included), so every thread inherits
    // the mask and the signals reach only the signal thread.
    let signals = block_shutdown_signals();
    let _lock = DirLock::acquire(&config.data_dir)?;
    crate::storage::filesystem::note_at_start(&config.data_dir, config.log_io);
    raise_memlock_limit();
    let budget = descriptor_budget(&config)?;
    let cluster = match &config.cluster {
        Some(c) => crate::cluster_start::join(&config, c)?,
        None => Arc::new(Cluster::load_or_init(&config.data_dir, config.cores)?),
    };
    if config
        .cluster
        .as_ref()
        .is_some_and(|c| !c.roles.is_broker())
    {
        return run_controller_only(&cluster, &signals);
    }
    limit_partitions(&config, &cluster, &budget)?;
    write_meta_properties(&config, &cluster)?;
    remove_orphan_partition_dirs(&config, &cluster);
    let config = Arc::new(config);
    let shutdown = Arc::new(AtomicBool::new(false));
    // Node-wide connection counts (max.connections, max.connections.per.ip), touched by the
    // shards only at accept and close.
    let connections = Arc::new(server::limits::NodeConnections::new(&config.network));
    let tls = tls_sources(&config)?;
    let (events_tx, events) = mpsc::channel::<NodeEvent>();
    let mut shards = Vec::with_capacity(config.cores);
    let mut mailboxes = crate::shard::mailbox::mesh(config.cores).into_iter();
    for core in 0..config.cores {
        let ends = mailboxes
            .next()
            .ok_or_else(|| StartError::Executor("mailbox mesh is short of a core".into()))?;
        let start = ShardStart {
            core,
            config: config.clone(),
            cluster: cluster.clone(),
            shutdown: shutdown.clone(),
            connections: connections.clone(),
            events: events_tx.clone(),
            file_cache_limit: budget.cache_per_shard,
            tls: tls.clone(),
        };
        shards.push(spawn_shard(start, ends)?);
    }
    // The signal thread keeps the channel open for as long as the process lives.
    spawn_signal_thread(signals, events_tx)?;
    let early_signal = match wait_until_ready(&events, config.cores) {
        Ok(signal) => signal,
        Err((e, exited)) => {
            // Bounded: a shard still waiting for a dead peer's mailbox would never stop.
            shutdown.store(true, Ordering::Release);
            wait_for_remaining_shards(&events, config.cores - exited);
            return Err(e);
        }
    };
    start_metrics_exporter(&config);
    tracing::info!(
        bootstrap = %format!("{}:{}", config.advertised_host, config.bootstrap_port),
        shards = config.cores,
        ports = ?config.shard_ports,
        data_dir = %config.data_dir.display(),
        "sluice ready"
    );
    let stop = match early_signal {
        Some(signal) => Ok(signal),
        None => wait_for_signal_or_dead_shard(&events),
    };
    match stop {
        Ok(signal) => {
            tracing::info!(
                signal,
                "shutting down: no new connections, finishing in-flight requests"
            );
            shutdown.store(true, Ordering::Release);
            join_all(shards)?;
            tracing::info!("shutdown complete");
            Ok(())
        }
        Err(died) => {
            // Half a node must not keep serving: stop the others and exit with the reason.
            tracing::error!(%died, "stopping the node");
            shutdown.store(true, Ordering::Release);
            wait_for_remaining_shards(&events, config.cores - 1);
            Err(died)
        }
    }
}

/// A controller-only node: no shards, no client listeners; runs until SIGTERM/SIGINT.
fn run_controller_only(cluster: &Cluster, signals: &libc::sigset_t) -> Result<(), StartError> {
    tracing::info!("sluice controller ready (process.roles=controller: no client listeners)");
    let signal = wait_for_signal(signals);
    tracing::info!(signal, "shutting down the controller");
    if let Some(controller) = cluster.controller() {
        controller.shutdown();
    }
    Ok(())
}

/// What the main thread waits for once the node runs.
enum NodeEvent {
    /// A shard has opened its partitions and listens.
    Ready,
    /// A shard could not start; the message names it.
    StartFailed(String),
    /// A shard's thread ended (its executor returned or unwound).
    Exited {
        core: usize,
        panicked: bool,
    },
    Signal(&'static str),
}

/// Everything a shard thread needs to start.
struct ShardStart {
    core: usize,
    config: Arc<BrokerConfig>,
    cluster: Arc<Cluster>,
    shutdown: Arc<AtomicBool>,
    connections: Arc<server::limits::NodeConnections>,
    events: mpsc::Sender<NodeEvent>,
    /// Closed-segment files this shard may keep open (its share of the descriptor budget).
    file_cache_limit: usize,
    /// The TLS configuration of each client listener (by index), `None` for plain ones.
    tls: Vec<Option<Arc<server::tls::TlsSource>>>,
}

/// Sends `Exited` when its shard thread ends, normally or by unwinding from a panic: it lives
/// in the thread's own frame, outside the executor, so nothing the executor does can skip it.
struct ExitNotice {
    core: usize,
    events: mpsc::Sender<NodeEvent>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let panicked = std::thread::panicking();
        let _ = self.events.send(NodeEvent::Exited {
            core: self.core,
            panicked,
        });
    }
}

/// Starts shard `core` on a thread of its own with a glommio executor pinned to the core.
fn spawn_shard(
    start: ShardStart,
    ends: MailboxEnds,
) -> Result<std::thread::JoinHandle<()>, StartError> {
    let core = start.core;
    std::thread::Builder::new()
        .name(format!("shard-{core}"))
        .spawn(move || {
            let _notice = ExitNotice {
                core,
                events: start.events.clone(),
            };
            let executor = match LocalExecutorBuilder::new(Placement::Fixed(core))
                .name(&format!("shard-{core}"))
                .io_memory(crate::storage::direct::DMA_ARENA_BYTES)
                .make()
            {
                Ok(executor) => executor,
                Err(e) => {
                    let message = format!("shard {core}: cannot start its executor: {e}");
                    let _ = start.events.send(NodeEvent::StartFailed(message));
                    return;
                }
            };
            crate::storage::file_cache::set_limit(start.file_cache_limit);
            executor.run(shard_main(start, ends));
        })
        .map_err(|e| StartError::Executor(e.to_string()))
}

/// Takes SIGTERM/SIGINT (blocked everywhere else) on a thread of its own, so the main thread
/// can wait for a signal and for a shard's death at once.
fn spawn_signal_thread(
    signals: libc::sigset_t,
    events: mpsc::Sender<NodeEvent>,
) -> Result<(), StartError> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                if events
                    .send(NodeEvent::Signal(wait_for_signal(&signals)))
                    .is_err()
                {
                    return;
                }
            }
        })
        .map(drop)
        .map_err(|e| StartError::Executor(e.to_string()))
}

/// Waits for SIGTERM/SIGINT; any shard exiting first is a fatal error naming it.
fn wait_for_signal_or_dead_shard(
    events: &mpsc::Receiver<NodeEvent>,
) -> Result<&'static str, StartError> {
    loop {
        match events.recv() {
            Ok(NodeEvent::Signal(signal)) => return Ok(signal),
            Ok(NodeEvent::Exited { core, panicked }) => {
                return Err(StartError::ShardDied { core, panicked });
            }
            Ok(NodeEvent::Ready | NodeEvent::StartFailed(_)) => {}
            // The signal thread holds a sender for the life of the process.
            Err(_) => return Ok("no signal source"),
        }
    }
}

/// After a shard died: gives the other `count` shards a bounded time to stop cleanly (flush
/// and close their files).
fn wait_for_remaining_shards(events: &mpsc::Receiver<NodeEvent>, mut count: usize) {
    let deadline = std::time::Instant::now() + FATAL_STOP_TIMEOUT;
    while count > 0 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(NodeEvent::Exited { .. }) => count -= 1,
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(shards = count, "shards still running at exit");
                return;
            }
        }
    }
}

/// Joins every shard after a graceful stop; a shard that panicked on the way is named.
fn join_all(shards: Vec<std::thread::JoinHandle<()>>) -> Result<(), StartError> {
    let mut result = Ok(());
    for (core, handle) in shards.into_iter().enumerate() {
        if handle.join().is_err() && result.is_ok() {
            result = Err(StartError::ShardPanickedAtShutdown(core));
        }
    }
    result
}

/// The metrics endpoint is an operator convenience: if its port is taken the broker still
/// runs, and says so.
fn start_metrics_exporter(config: &BrokerConfig) {
    let Some(addr) = &config.metrics_addr else {
        return;
    };
    let parsed = addr.parse::<SocketAddr>();
    match parsed
        .map_err(|e| e.to_string())
        .and_then(|a| crate::metrics::serve_metrics(a).map_err(|e| e.to_string()))
    {
        Ok(_) => tracing::info!(addr = %addr, "metrics endpoint listening (/metrics, /health)"),
        Err(e) => tracing::warn!(addr = %addr, error = %e, "metrics endpoint not started"),
    }
}

/// Waits until every shard is ready; a signal that arrives meanwhile is returned, to stop the
/// node as soon as it is up. On failure, also says how many shards have already exited.
fn wait_until_ready(
    events: &mpsc::Receiver<NodeEvent>,
    cores: usize,
) -> Result<Option<&'static str>, (StartError, usize)> {
    let mut ready = 0;
    let mut signal = None;
    while ready < cores {
        match events.recv() {
            Ok(NodeEvent::Ready) => ready += 1,
            Ok(NodeEvent::StartFailed(message)) => return Err((StartError::Shard(message), 0)),
            Ok(NodeEvent::Exited { core, .. }) => {
                let message = format!("shard {core} exited during start-up");
                return Err((StartError::Shard(message), 1));
            }
            Ok(NodeEvent::Signal(s)) => signal = signal.or(Some(s)),
            Err(_) => {
                let message = "every shard exited during start-up".to_string();
                return Err((StartError::Shard(message), cores));
            }
        }
    }
    Ok(signal)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, StartError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| StartError::Address(format!("{host}:{port}")))
}

async fn shard_main(start: ShardStart, mailbox_ends: MailboxEnds) {
    let ShardStart {
        core,
        config,
        cluster,
        shutdown,
        connections,
        events,
        file_cache_limit: _,
        tls,
    } = start;
    crate::metrics::install_for_current_shard(core);
    if config.log_io == crate::storage::LogIoMode::Direct {
        crate::storage::direct::pre_touch_dma_arena();
    }
    let shard = Rc::new(Shard::new(core, config.clone(), cluster, shutdown));
    // Every shard connects its mailbox at the same point of start-up; a connect completes
    // once the peer's end connects too.
    let handler = crate::shard::txns::mailbox_handler(Rc::downgrade(&shard));
    let mailbox = Mailbox::connect(mailbox_ends, handler).await;
    if shard.mailbox.set(mailbox).is_err() {
        tracing::error!(core, "mailbox was connected twice");
    }
    let listeners = match bind_listeners(&config, core, &tls) {
        Ok(l) => l,
        Err(e) => {
            let _ = events.send(NodeEvent::StartFailed(format!("shard {core}: {e}")));
            return;
        }
    };
    if let Err(message) = open_partitions_or_refuse(&shard).await {
        let _ = events.send(NodeEvent::StartFailed(message));
        return;
    }
    // Groups must be loaded before any request can reach them.
    crate::shard::groups::load(&shard).await;
    crate::shard::txns::load(&shard).await;
    crate::shard::share_state_log::load(&shard).await;
    let timers = glommio::spawn_local(crate::shard::groups::run_timers(shard.clone()));
    let txn_timers = glommio::spawn_local(crate::shard::txns::run_timers(shard.clone()));
    // Cluster mode: fetch the partitions this shard follows, and keep the ISR of those it
    // leads (both return at once on a single node).
    let replica_fetcher =
        glommio::spawn_local(crate::shard::replication::fetcher::run(shard.clone()));
    let isr_checks = glommio::spawn_local(crate::shard::replication::run_isr_checks(shard.clone()));
    let probed = shard.clone();
    let stall_probe = glommio::spawn_local(async move {
        crate::shard::stall_probe::run(|| !probed.is_shutting_down()).await
    });
    let accepts: Vec<_> = listeners
        .into_iter()
        .map(|(listener, socket)| {
            glommio::spawn_local(server::accept_loop(
                shard.clone(),
                socket,
                listener,
                connections.clone(),
            ))
        })
        .collect();
    tracing::info!(
        core,
        port = config.shard_ports[core],
        partitions = shard.partition_count(),
        "shard ready"
    );
    let _ = events.send(NodeEvent::Ready);
    #[cfg(debug_assertions)]
    test_hooks::panic_if_asked(core);
    housekeeping_until_shutdown(&shard).await;
    for accept in accepts {
        accept.await;
    }
    timers.await;
    txn_timers.await;
    replica_fetcher.await;
    isr_checks.await;
    stall_probe.await;
    drain_in_flight(&shard).await;
    shard.close_all().await;
    tracing::info!(core, "shard stopped");
}

/// Builds each TLS listener's configuration, so a bad keystore stops start-up with its
/// reason, and starts the thread that reloads them when their files change.
fn tls_sources(
    config: &BrokerConfig,
) -> Result<Vec<Option<Arc<server::tls::TlsSource>>>, StartError> {
    let sources = config
        .listeners
        .iter()
        .map(|l| {
            l.tls
                .clone()
                .map(server::tls::TlsSource::new)
                .transpose()
                .map_err(|e| StartError::Tls(format!("listener {}: {e}", l.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let live: Vec<_> = sources.iter().flatten().cloned().collect();
    server::tls::spawn_reloader(&live)?;
    Ok(sources)
}

/// Binds this shard's port of every client listener, and on shard 0 their bootstrap ports.
fn bind_listeners(
    config: &BrokerConfig,
    core: usize,
    tls: &[Option<Arc<server::tls::TlsSource>>],
) -> Result<Vec<(Rc<server::ShardListener>, glommio::net::TcpListener)>, StartError> {
    let mut out = Vec::new();
    for (index, listener) in config.listeners.iter().enumerate() {
        let shard_listener = Rc::new(server::ShardListener {
            index,
            protocol: listener.protocol,
            tls: tls
                .get(index)
                .cloned()
                .flatten()
                .map(server::tls::ShardTls::new),
        });
        let mut ports = vec![listener.shard_ports[core]];
        if core == 0 {
            ports.push(listener.bootstrap_port);
        }
        for port in ports {
            let addr = resolve(&listener.host, port)?;
            let socket =
                bind_retrying(addr).map_err(|e| StartError::Address(format!("{addr}: {e}")))?;
            out.push((shard_listener.clone(), socket));
        }
    }
    Ok(out)
}

/// How long a busy port is retried at start-up.
const BIND_RETRY_FOR: Duration = Duration::from_secs(3);

/// Binds `addr`, retrying for a few seconds while it is in use. After a crash (`kill -9`) the
/// kernel tears the dead process's io_uring instance down asynchronously, and the listening
/// socket that instance still referenced (a pending accept) lingers for a moment after the
/// process is gone: an immediate restart would fail with EADDRINUSE. A port that stays busy
/// (another broker on it) still fails, after the retry window.
fn bind_retrying(addr: SocketAddr) -> std::io::Result<glommio::net::TcpListener> {
    let deadline = std::time::Instant::now() + BIND_RETRY_FOR;
    let mut said = false;
    loop {
        match server::bind(addr) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                if !said {
                    tracing::info!(%addr, "port busy, retrying for up to 3 s (a previous process's sockets may still be closing)");
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

async fn housekeeping_until_shutdown(shard: &Rc<Shard>) {
    let retention_every = Duration::from_millis(shard.config.retention_check_interval_ms);
    let mut last_retention = std::time::Instant::now();
    let clean_every = Duration::from_millis(shard.config.cleaner_backoff_ms);
    let mut last_clean = std::time::Instant::now();
    let producer_expiry_every =
        Duration::from_millis(shard.config.producer_id_expiration_check_interval_ms as u64);
    let mut last_producer_expiry = std::time::Instant::now();
    let mut last_publish = std::time::Instant::now();
    let mut last_hw_checkpoint = std::time::Instant::now();
    while !shard.is_shutting_down() {
        glommio::timer::sleep(HOUSEKEEPING_INTERVAL).await;
        shard.reconcile().await;
        crate::shard::groups::follow_leadership(shard).await;
        crate::shard::txns::follow_leadership(shard).await;
        crate::shard::share_state_log::follow_leadership(shard).await;
        if last_publish.elapsed() >= METRICS_PUBLISH_INTERVAL {
            last_publish = std::time::Instant::now();
            // Traffic first, so a published partition gauge never runs ahead of it.
            crate::metrics::with_current(|m| m.publish_local());
            shard.publish_metrics();
            // The connections' copy-buffer pools belong to the server, not the shard.
            let (frame_buffers, frame_buffer_bytes) = server::frame_pool::gauge();
            let pools = crate::metrics::PoolGauge {
                frame_buffers,
                frame_buffer_bytes,
                ..server::zero_copy::pool_gauge()
            };
            crate::metrics::with_current(|m| m.publish_pools(pools));
        }
        shard.flush_overdue(crate::now_ms()).await;
        if last_hw_checkpoint.elapsed() >= HW_CHECKPOINT_INTERVAL {
            last_hw_checkpoint = std::time::Instant::now();
            shard.checkpoint_high_watermarks().await;
        }
        if last_retention.elapsed() >= retention_every {
            last_retention = std::time::Instant::now();
            shard.apply_retention(crate::now_ms()).await;
        }
        if last_clean.elapsed() >= clean_every {
            last_clean = std::time::Instant::now();
            shard.run_cleaner(crate::now_ms()).await;
        }
        if last_producer_expiry.elapsed() >= producer_expiry_every {
            last_producer_expiry = std::time::Instant::now();
            shard.expire_producers(crate::now_ms());
        }
    }
    shard.shutdown_event.notify();
}

async fn drain_in_flight(shard: &Rc<Shard>) {
    let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
    while shard.in_flight.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    if shard.in_flight.get() > 0 {
        tracing::warn!(
            core = shard.core,
            in_flight = shard.in_flight.get(),
            "shutdown drain timed out"
        );
    }
}

/// Raises the open-file limit to its hard limit and derives what it allows (see
/// [`crate::storage::fd_budget`]).
fn descriptor_budget(config: &BrokerConfig) -> Result<FdBudget, StartError> {
    let (soft, hard) = crate::storage::fd_budget::raise_nofile_limit()?;
    let budget = FdBudget::derive(soft, config.cores);
    tracing::info!(
        nofile = soft,
        nofile_hard = hard,
        max_partitions = budget.max_partitions,
        segment_files_per_shard = budget.cache_per_shard,
        "open-file limit"
    );
    Ok(budget)
}

/// Gives the cluster its partition limit, keeping room for the internal topics, and refuses
/// to start when the partitions already placed here could not all be opened: starting
/// would leave arbitrary ones offline (acknowledged data unreadable) instead of saying so.
fn limit_partitions(
    config: &BrokerConfig,
    cluster: &Cluster,
    budget: &FdBudget,
) -> Result<(), StartError> {
    let partitions = cluster.partition_count();
    if partitions > budget.max_partitions {
        return Err(StartError::TooManyPartitions {
            partitions,
            max: budget.max_partitions,
            hint: budget.hint(),
        });
    }
    let reserved = [
        (
            crate::shard::offsets_log::OFFSETS_TOPIC,
            config.offsets_topic_num_partitions,
        ),
        (
            crate::shard::txns::TXN_TOPIC,
            config.transaction_state_num_partitions,
        ),
        (
            crate::shard::share_state_log::SHARE_STATE_TOPIC,
            config.share_state_num_partitions,
        ),
    ]
    .into_iter()
    .map(|(topic, n)| (topic.to_string(), usize::try_from(n).unwrap_or(0)))
    .collect();
    cluster.set_partition_limit(PartitionLimit {
        max: budget.max_partitions,
        reserved,
        hint: budget.hint(),
    });
    Ok(())
}

/// Opens the shard's partitions. A partition that fails to open is logged loudly (each one,
/// then a summary) and stays offline; running out of descriptors instead fails start-up,
/// since which partitions it hit would be arbitrary.
async fn open_partitions_or_refuse(shard: &Shard) -> Result<(), String> {
    let failed = shard.open_owned_partitions().await;
    if failed.is_empty() {
        return Ok(());
    }
    let out_of_fds = failed.iter().any(|(_, _, e)| {
        matches!(e, crate::shard::PartitionError::Storage(io) if crate::storage::fd_budget::is_out_of_descriptors(io))
    });
    let names: Vec<String> = failed.iter().map(|(t, p, _)| format!("{t}-{p}")).collect();
    if out_of_fds {
        return Err(format!(
            "shard {}: ran out of file descriptors opening partitions ({} failed: {}); raise the open-file limit",
            shard.core,
            failed.len(),
            names.join(", ")
        ));
    }
    tracing::error!(
        core = shard.core,
        offline = failed.len(),
        partitions = %names.join(", "),
        "partitions OFFLINE after start-up (see the errors above; sluice_partitions_offline)"
    );
    Ok(())
}

/// glommio registers I/O buffers in locked memory; raise the limit when we are allowed to.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct; failure only means we lack privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) } != 0 {
        tracing::debug!(
            "could not raise RLIMIT_MEMLOCK; glommio may warn about registered buffers"
        );
    }
}

/// Blocks SIGTERM and SIGINT in this thread before shards start, so every executor thread
/// inherits the mask and the signals are taken only by `wait_for_signal`.
fn block_shutdown_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a zeroed, local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, libc::SIGTERM);
        libc::sigaddset(&raw mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    loop {
        // SAFETY: sigwait with a valid signal set and an out-parameter on our stack.
        let mut sig: libc::c_int = 0;
        if unsafe { libc::sigwait(set, &raw mut sig) } == 0 {
            return if sig == libc::SIGTERM {
                "SIGTERM"
            } else {
                "SIGINT"
            };
        }
    }
}

/// Kafka's `meta.properties`, so operators and tools recognise the directory.
fn write_meta_properties(config: &BrokerConfig, cluster: &Cluster) -> std::io::Result<()> {
    let text = format!(
        "version=1\nnode.id={}\ncluster.id={}\n",
        config.node_id, cluster.cluster_id
    );
    let path = config.data_dir.join("meta.properties");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// Removes partition directories whose topic or partition no longer exists (a delete that a
/// crash interrupted). Runs before any shard opens a partition.
fn remove_orphan_partition_dirs(config: &BrokerConfig, cluster: &Cluster) {
    let Ok(entries) = std::fs::read_dir(&config.data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("-delete") {
            // A deleted partition renamed aside whose removal a crash interrupted.
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %name, error = %e, "could not remove a deleted partition directory");
            }
            continue;
        }
        let Some((topic, partition)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(partition) = partition.parse::<usize>() else {
            continue;
        };
        if !entry.path().join("partition.metadata").exists() {
            continue; // not a directory we made
        }
        let known = cluster
            .topic(topic)
            .is_some_and(|t| partition < t.partitions.len());
        if !known {
            tracing::info!(dir = %name, "removing the directory of a deleted partition");
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %name, error = %e, "could not remove orphan partition directory");
            }
        }
    }
}

/// Test-only fault injection, compiled into debug builds only (release builds never read the
/// variable): `SLUICE_TEST_PANIC_SHARD=<core>` makes that shard panic in a task of its own
/// right after it is ready, so tests can check that a dead shard stops the whole node.
#[cfg(debug_assertions)]
mod test_hooks {
    pub fn panic_if_asked(core: usize) {
        let asked = std::env::var("SLUICE_TEST_PANIC_SHARD").ok();
        if asked.and_then(|v| v.trim().parse::<usize>().ok()) == Some(core) {
            glommio::spawn_local(async move {
                glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
                panic!("SLUICE_TEST_PANIC_SHARD={core}: test-requested panic");
            })
            .detach();
        }
    }
}
