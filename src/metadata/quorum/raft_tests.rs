//! A one-node openraft `Raft` over the file-backed log and state machine: commands commit,
//! are published through the watch, openraft snapshots and purges the log by policy, and a
//! restart from the same directory rebuilds the state and keeps serving writes. The network
//! is never used by one node, so it answers "unreachable".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{Config, Raft, ServerState, SnapshotPolicy};
use tempfile::TempDir;

use super::tests::Kv;
use super::{ControllerNode, MetaLogStore, MetaStateMachine, QuorumTypes};

type C = QuorumTypes<Kv>;

struct NoNetwork;
struct NoPeer;

fn unreachable<E: std::error::Error>() -> RPCError<u64, ControllerNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(
        "one-node test has no peers",
    )))
}

impl RaftNetworkFactory<C> for NoNetwork {
    type Network = NoPeer;

    async fn new_client(&mut self, _target: u64, _node: &ControllerNode) -> NoPeer {
        NoPeer
    }
}

impl RaftNetwork<C> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<C>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, ControllerNode, RaftError<u64>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<C>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, ControllerNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, ControllerNode, RaftError<u64>>> {
        Err(unreachable())
    }
}

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

async fn start(dir: &TempDir) -> (Raft<C>, tokio::sync::watch::Receiver<Arc<Kv>>) {
    let config = Config {
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5),
        max_in_snapshot_log_to_keep: 2,
        ..Config::default()
    };
    let config = Arc::new(config.validate().expect("valid config"));
    let log = MetaLogStore::<C>::open_with(dir.path(), 512).expect("open log");
    let sm = MetaStateMachine::<Kv>::open(dir.path()).expect("open state machine");
    let rx = sm.subscribe();
    let raft = Raft::new(1, config, NoNetwork, log, sm)
        .await
        .expect("raft");
    (raft, rx)
}

#[test]
fn one_node_commits_snapshots_and_restarts_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let last_index = runtime().block_on(async {
        let (raft, rx) = start(&dir).await;
        let node = ControllerNode {
            host: "127.0.0.1".to_owned(),
            port: 19093,
        };
        raft.initialize(BTreeMap::from([(1, node)]))
            .await
            .expect("initialize");
        let mut last = 0;
        for i in 0..12 {
            let reply = raft
                .client_write((format!("k{i}"), "v".to_owned()))
                .await
                .expect("write");
            assert_eq!(reply.data, None, "a new key has no previous value");
            last = reply.log_id.index;
        }
        assert_eq!(
            rx.borrow().map.len(),
            12,
            "published by the time the write answers"
        );
        raft.wait(WAIT)
            .metrics(|m| m.purged.is_some(), "snapshot taken and log purged")
            .await
            .expect("purge");
        raft.shutdown().await.expect("shutdown");
        last
    });
    runtime().block_on(async {
        let (raft, rx) = start(&dir).await;
        raft.wait(WAIT)
            .state(ServerState::Leader, "re-elected from its own vote and log")
            .await
            .expect("leader");
        raft.wait(WAIT)
            .applied_index_at_least(Some(last_index), "state rebuilt")
            .await
            .expect("applied");
        assert_eq!(rx.borrow().map.len(), 12);
        let reply = raft
            .client_write(("k0".to_owned(), "w".to_owned()))
            .await
            .expect("write after restart");
        assert_eq!(reply.data.as_deref(), Some("v"));
        raft.shutdown().await.expect("shutdown");
    });
}
