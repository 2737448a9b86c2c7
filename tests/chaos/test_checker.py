"""The checker on small hand-written histories: clean ones pass, and each planted violation
is reported with its offsets and values."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checker import check  # noqa: E402


def write(value, p, o, outcome="ok", invoke=0.0, complete=1.0):
    e = dict(type="write", proc="p0", value=value, invoke=invoke, complete=complete,
             outcome=outcome)
    if outcome == "ok":
        e.update(partition=p, offset=o)
    return e


def final(p, o, value):
    return dict(type="final", partition=p, offset=o, value=value)


def end(p, high):
    return dict(type="final-end", partition=p, high=high, reached=high)


def read(session, p, o, value, t=1.0):
    return dict(type="read", session=session, partition=p, offset=o, value=value, t=t)


def kinds(result, prop):
    return sorted(v["kind"] for v in result["violations"] if v["property"] == prop)


def clean():
    return [
        write("a", 0, 0), write("b", 0, 1), write("c", 1, 0),
        write("d", None, None, outcome="unknown"),
        read("s1", 0, 0, "a"), read("s1", 0, 1, "b"), read("s1", 1, 0, "c"),
        final(0, 0, "a"), final(0, 1, "b"), final(1, 0, "c"), final(1, 1, "d"),
        end(0, 2), end(1, 2),
    ]


def test_clean_history_passes():
    result = check(clean())
    assert result["ok"], result["violations"]
    assert result["stats"]["writes_ok"] == 3


def test_unknown_write_may_be_missing():
    events = [e for e in clean() if e.get("value") != "d" or e["type"] == "write"]
    events = [e for e in events if not (e["type"] == "final" and e["value"] == "d")]
    assert check(events)["ok"]


def test_lost_acknowledged_write():
    events = [e for e in clean() if not (e["type"] == "final" and e["value"] == "b")]
    events = [e if e["type"] != "final-end" or e["partition"] != 0 else end(0, 1)
              for e in events]
    result = check(events)
    assert kinds(result, 1) == ["lost"]
    v = result["violations"][0]
    assert (v["partition"], v["offset"], v["value"], v["log_end"]) == (0, 1, "b", 1)


def test_write_at_another_offset_is_reported():
    events = [e for e in clean() if e["type"] != "final" or e["partition"] != 0]
    events += [final(0, 0, "b"), final(0, 1, "a")]
    result = check(events)
    assert kinds(result, 1) == ["overwritten", "overwritten"]
    assert {tuple(v["found_at"][0]) for v in result["violations"] if v["property"] == 1} \
        == {(0, 0), (0, 1)}


def test_write_acknowledged_without_offset():
    events = clean() + [write("e", 1, None), final(1, 2, "e")]
    events = [e for e in events if e["type"] != "final-end"] + [end(0, 2), end(1, 3)]
    assert check(events)["ok"]
    result = check(clean() + [write("f", 1, None)])
    assert kinds(result, 1) == ["lost"]
    assert result["violations"][0]["value"] == "f"


def test_duplicate_value():
    result = check(clean() + [final(1, 2, "a")])
    assert kinds(result, 2) == ["duplicate"]
    assert result["violations"][0]["at"] == [(0, 0), (1, 2)]


def identity(p, o, pid, epoch, seq):
    return dict(type="identity", partition=p, offset=o, producer_id=pid, producer_epoch=epoch,
                sequence=seq)


def test_duplicate_by_the_broker_or_by_a_client_resend():
    dup = clean() + [final(0, 2, "a"), end(0, 3)]
    # The same producer, epoch and sequence twice: the broker appended a retry again.
    broker = check(dup + [identity(0, 0, 7, 0, 0), identity(0, 2, 7, 0, 0)])
    assert kinds(broker, 2) == ["duplicate"]
    assert broker["violations"][0]["copies"][1]["identity"] == (7, 0, 0)
    # Unknown identities count against the broker too.
    assert kinds(check(dup + [identity(0, 0, 7, 0, 0)]), 2) == ["duplicate"]
    # The client sent it again under a bumped epoch: listed apart, not a violation.
    resent = check(dup + [identity(0, 0, 7, 0, 5), identity(0, 2, 7, 1, 0)])
    assert not kinds(resent, 2)
    assert resent["stats"]["client_resends"] == 1
    assert resent["client_resends"][0]["value"] == "a"
    # An older epoch after a newer one: the broker took a fenced epoch.
    assert kinds(check(dup + [identity(0, 0, 7, 1, 5), identity(0, 2, 7, 0, 9)]), 2) == [
        "duplicate"]
    # Copies in two partitions are not a re-send of one message.
    two = clean() + [final(1, 1, "a"), end(1, 2)]
    assert kinds(check(two + [identity(0, 0, 7, 0, 0), identity(1, 1, 7, 1, 0)]), 2) == [
        "duplicate"]
    # Two producer ids: not one client's re-send.
    assert kinds(check(dup + [identity(0, 0, 7, 0, 0), identity(0, 2, 8, 1, 0)]), 2) == [
        "duplicate"]


def test_live_read_conflicting_with_final():
    result = check(clean() + [read("s2", 0, 1, "zzz")])
    assert kinds(result, 2) == ["conflict"]


def test_live_read_of_truncated_record():
    result = check(clean() + [read("s2", 1, 5, "ghost")])
    assert "read-then-gone" in kinds(result, 2)


def test_session_backwards_and_skip():
    events = clean() + [read("s2", 0, 0, "a"), read("s2", 0, 1, "b"), read("s2", 0, 0, "a"),
                        read("s3", 0, 0, "a"), read("s3", 0, 2, "x")]
    result = check(events)
    assert kinds(result, 3) == ["backwards", "skip"]
    back = [v for v in result["violations"] if v["kind"] == "backwards"][0]
    assert (back["session"], back["previous"], back["offset"]) == ("s2", 1, 0)


def poll(p, high, invoke):
    return dict(type="list-offsets", partition=p, high=high, invoke=invoke,
                complete=invoke + 0.01)


def test_list_offsets_backwards_and_below_acked():
    events = clean() + [poll(0, 1, 0.5), poll(0, 2, 1.5), poll(0, 1, 2.5)]
    result = check(events)
    # 1 at 2.5 is both below the earlier 2 and below offset 1, acked at 1.0.
    assert kinds(result, 4) == ["backwards", "below-acked"]
    events = clean() + [poll(0, 0, 0.5), poll(0, 2, 1.5)]
    assert check(events)["ok"]  # 0 at 0.5: nothing was acknowledged yet


def commit(p, o, complete, outcome="ok"):
    return dict(type="commit", group="g", partition=p, offset=o, invoke=complete - 0.1,
                complete=complete, outcome=outcome)


def fetched(p, o, invoke):
    return dict(type="committed", group="g", partition=p, offset=o, invoke=invoke,
                complete=invoke + 0.1)


def test_commits():
    ok = clean() + [commit(0, 1, 1.0), commit(0, 2, 2.0), commit(0, 3, 3.0, "unknown"),
                    fetched(0, -1001, 0.5), fetched(0, 1, 1.5), fetched(0, 3, 3.5),
                    fetched(0, 2, 3.6)]
    assert check(ok)["ok"]
    bad = ok + [fetched(0, 1, 2.5), fetched(0, -1001, 4.0), fetched(0, 7, 4.5)]
    result = check(bad)
    assert kinds(result, 5) == ["invented", "lost", "regressed"]


def txn(i, values, outcome):
    return dict(type="txn", proc="t", id=i, values=values, outcome=outcome, invoke=0.0,
                complete=1.0)


def tread(p, o, value):
    return dict(type="txn-final", partition=p, offset=o, value=value)


def test_transactions():
    ok = clean() + [txn(0, ["t0a", "t0b"], "commit-ok"), txn(1, ["t1a"], "abort-ok"),
                    txn(2, ["t2a", "t2b"], "unknown"), txn(3, ["t3a"], "unknown"),
                    tread(0, 0, "t0a"), tread(1, 0, "t0b"), tread(0, 4, "t3a")]
    assert check(ok)["ok"]
    bad = clean() + [txn(0, ["t0a", "t0b"], "commit-ok"), txn(1, ["t1a"], "abort-ok"),
                     txn(2, ["t2a", "t2b"], "unknown"),
                     tread(0, 0, "t0a"), tread(0, 2, "t1a"), tread(1, 0, "t2a"),
                     tread(1, 1, "t2a"), tread(1, 2, "nobody")]
    result = check(bad)
    assert kinds(result, 6) == ["aborted-read", "committed-lost", "duplicate", "torn",
                                "unknown-value"]
    lost = [v for v in result["violations"] if v["kind"] == "committed-lost"][0]
    assert lost["missing"] == ["t0b"]


def test_missing_final_read_is_a_violation():
    result = check([write("a", 0, 0)])
    assert kinds(result, 1) == ["lost", "no-final-read"]


def test_not_healed_is_a_liveness_violation():
    result = check(clean() + [dict(type="not-healed", within=90,
                                   isr={"chaos/0": [3, [1, 3]]})])
    assert kinds(result, 7) == ["not-healed"]
    assert result["violations"][0]["isr"] == {"chaos/0": [3, [1, 3]]}


def test_a_broken_node_is_a_liveness_violation():
    result = check(clean() + [dict(type="node-broken", node=2, line="thread panicked at x")])
    assert kinds(result, 7) == ["node-broken"]
