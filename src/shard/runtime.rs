//! Node start-up and shutdown, on the main thread: lock the data directory, load cluster
//! metadata, start one pinned glommio executor per core (each a shard with its own
//! listener), wait until all are ready, then wait for SIGTERM/SIGINT and stop them in order:
//! stop accepting, let in-flight requests finish, flush and close files.

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

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("cannot start shard executor: {0}")]
    Executor(String),
    #[error("shard failed to start: {0}")]
    Shard(String),
    #[error("cannot listen on {0}")]
    Address(String),
    #[error("i/o error during start-up: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "{partitions} partitions are placed on this node but it can serve at most {max}: {hint}"
    )]
    TooManyPartitions {
        partitions: usize,
        max: usize,
        hint: String,
    },
}

/// How often a shard checks for shutdown and applies control-plane changes.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(50);
/// How often a shard publishes its partitions' sizes for the metrics endpoint.
const METRICS_PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a shard waits for in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(config: BrokerConfig) -> Result<(), StartError> {
    let _lock = DirLock::acquire(&config.data_dir)?;
    raise_memlock_limit();
    let budget = descriptor_budget(&config)?;
    let cluster = Arc::new(Cluster::load_or_init(&config.data_dir, config.cores)?);
    limit_partitions(&config, &cluster, &budget)?;
    write_meta_properties(&config, &cluster)?;
    remove_orphan_partition_dirs(&config, &cluster);
    let signals = block_shutdown_signals();
    let config = Arc::new(config);
    let shutdown = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
    let mut executors = Vec::with_capacity(config.cores);
    let mut mailboxes = crate::shard::mailbox::mesh(config.cores).into_iter();
    for core in 0..config.cores {
        let ends = mailboxes
            .next()
            .ok_or_else(|| StartError::Executor("mailbox mesh is short of a core".into()))?;
        let (config, cluster, shutdown, ready) = (
            config.clone(),
            cluster.clone(),
            shutdown.clone(),
            ready_tx.clone(),
        );
        let cache_limit = budget.cache_per_shard;
        let handle = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("shard-{core}"))
            .spawn(move || async move {
                crate::storage::file_cache::set_limit(cache_limit);
                shard_main(core, config, cluster, shutdown, ready, ends).await
            })
            .map_err(|e| StartError::Executor(e.to_string()))?;
        executors.push(handle);
    }
    drop(ready_tx);
    let started = wait_until_ready(&ready_rx, config.cores);
    if let Err(e) = started {
        shutdown.store(true, Ordering::Release);
        executors.into_iter().for_each(|h| drop(h.join()));
        return Err(e);
    }
    start_metrics_exporter(&config);
    tracing::info!(
        bootstrap = %format!("{}:{}", config.advertised_host, config.bootstrap_port),
        shards = config.cores,
        ports = ?config.shard_ports,
        data_dir = %config.data_dir.display(),
        "sluice ready"
    );
    let signal = wait_for_signal(&signals);
    tracing::info!(
        signal,
        "shutting down: no new connections, finishing in-flight requests"
    );
    shutdown.store(true, Ordering::Release);
    for handle in executors {
        if handle.join().is_err() {
            return Err(StartError::Shard("a shard panicked during shutdown".into()));
        }
    }
    tracing::info!("shutdown complete");
    Ok(())
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

fn wait_until_ready(
    ready: &mpsc::Receiver<Result<usize, String>>,
    cores: usize,
) -> Result<(), StartError> {
    for _ in 0..cores {
        match ready.recv() {
            Ok(Ok(_core)) => {}
            Ok(Err(message)) => return Err(StartError::Shard(message)),
            Err(_) => return Err(StartError::Shard("a shard exited during start-up".into())),
        }
    }
    Ok(())
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

async fn shard_main(
    core: usize,
    config: Arc<BrokerConfig>,
    cluster: Arc<Cluster>,
    shutdown: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<usize, String>>,
    mailbox_ends: MailboxEnds,
) {
    crate::metrics::install_for_current_shard(core);
    let shard = Rc::new(Shard::new(core, config.clone(), cluster, shutdown));
    // Every shard connects its mailbox at the same point of start-up; a connect completes
    // once the peer's end connects too.
    let handler = crate::shard::txns::mailbox_handler(Rc::downgrade(&shard));
    let mailbox = Mailbox::connect(mailbox_ends, handler).await;
    if shard.mailbox.set(mailbox).is_err() {
        tracing::error!(core, "mailbox was connected twice");
    }
    let listeners = match bind_listeners(&config, core) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {core}: {e}")));
            return;
        }
    };
    if let Err(message) = open_partitions_or_refuse(&shard).await {
        let _ = ready.send(Err(message));
        return;
    }
    // Groups must be loaded before any request can reach them.
    crate::shard::groups::load(&shard).await;
    crate::shard::txns::load(&shard).await;
    let timers = glommio::spawn_local(crate::shard::groups::run_timers(shard.clone()));
    let txn_timers = glommio::spawn_local(crate::shard::txns::run_timers(shard.clone()));
    let accepts: Vec<_> = listeners
        .into_iter()
        .map(|l| glommio::spawn_local(server::accept_loop(shard.clone(), l)))
        .collect();
    tracing::info!(
        core,
        port = config.shard_ports[core],
        partitions = shard.partition_count(),
        "shard ready"
    );
    let _ = ready.send(Ok(core));
    housekeeping_until_shutdown(&shard).await;
    for accept in accepts {
        accept.await;
    }
    timers.await;
    txn_timers.await;
    drain_in_flight(&shard).await;
    shard.close_all().await;
    tracing::info!(core, "shard stopped");
}

fn bind_listeners(
    config: &BrokerConfig,
    core: usize,
) -> Result<Vec<glommio::net::TcpListener>, StartError> {
    let mut ports = vec![config.shard_ports[core]];
    if core == 0 {
        ports.push(config.bootstrap_port);
    }
    ports
        .into_iter()
        .map(|port| {
            let addr = resolve(&config.host, port)?;
            bind_retrying(addr).map_err(|e| StartError::Address(format!("{addr}: {e}")))
        })
        .collect()
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
    while !shard.is_shutting_down() {
        glommio::timer::sleep(HOUSEKEEPING_INTERVAL).await;
        shard.reconcile().await;
        if last_publish.elapsed() >= METRICS_PUBLISH_INTERVAL {
            last_publish = std::time::Instant::now();
            shard.publish_metrics();
        }
        shard.flush_overdue(crate::now_ms()).await;
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
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
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
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    loop {
        // SAFETY: sigwait with a valid signal set and an out-parameter on our stack.
        let mut sig: libc::c_int = 0;
        if unsafe { libc::sigwait(set, &mut sig) } == 0 {
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
