"""The CI chaos schedule: a 3-node cluster (in network namespaces when run as root, else on
loopback addresses) under every fault kind once (fixed seed), with
idempotent producers, live readers, a ListOffsets poller, an offset committer and
transactions; the checker must find nothing. Then the planted bug (debug builds only:
SLUICE_TEST_ACK_BEFORE_REPLICATION=1 acknowledges acks=all before replicating) under leader
isolation and crash: the checker must report lost acknowledged writes, so it cannot pass
vacuously. Histories and reports stay in pytest's tmp dirs (printed on failure)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from checker import report_text  # noqa: E402
from nemesis import ALL_KINDS  # noqa: E402


def test_ci_schedule_every_fault_no_violation(tmp_path):
    # Every kind once; the nftables ones only where network namespaces work (root).
    result = harness.run(tmp_path, seed=7, duration=0, schedule=ALL_KINDS, port=24600)
    print(report_text(result))
    assert not result["harness_errors"], result["harness_errors"]
    assert not result["violations"], f"violations, history in {tmp_path}: {result['violations'][:5]}"
    stats = result["stats"]
    ran = [e for e in harness.load(tmp_path / "history.jsonl") if e["type"] == "run"][0]
    assert stats["faults"] == len(ran["schedule"]) >= 7
    # The workloads really ran through the faults.
    assert stats["writes_ok"] > 2000 and stats["final_records"] >= stats["writes_ok"]
    assert stats["live_reads"] > 1000 and stats["list_offsets"] > 20
    assert stats["commits_ok"] > 20 and stats["commit_fetches"] > 20
    assert stats["txns_committed"] > 10 and stats["txns_aborted"] > 3


def test_planted_bug_loses_acknowledged_writes(tmp_path):
    result = harness.run(tmp_path, seed=3, duration=0, planted=True, txns=False,
                         schedule=["crash-isolated-leader", "crash-isolated-leader"],
                         port=24700)
    print(report_text(result, limit=5))
    lost = [v for v in result["violations"] if v["property"] == 1 and v["kind"] == "lost"]
    assert lost, f"the planted bug went unnoticed, history in {tmp_path}"
    # Each names the partition, offset and value the client was told.
    assert all(v["value"] and v["offset"] >= 0 and v["partition"] >= 0 for v in lost)
