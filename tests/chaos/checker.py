"""Checks a chaos history (see history.py and workload.py for the events) for the safety
properties Kafka promises; each violation names the offsets and values involved.

1. lost: every acknowledged write (outcome ok) is read back at the partition and offset it
   was given, by the final read after the cluster healed.
2. duplicate / conflict: with idempotence each value is in the log at most once, and every
   observation of a (partition, offset), live or final, shows one value. A value whose copies
   the segment files (`identity` events, logdump.py) show written in one partition by the same
   producer id under epochs rising with the offset was sent again by the client after it
   bumped its epoch: no broker
   can recognise that as a retry (a new epoch starts a new sequence space), so it is listed
   apart as `client_resends` (with the identities) rather than as a broker violation. Copies
   with the same producer id, epoch and sequence, or without identities, are violations.
3. order: a consumer session sees each partition's offsets go up by exactly one (no going
   back, no skip: the topic has no transactions or compaction, so offsets are contiguous).
4. list-offsets: the latest offset (ListOffsets) never goes backwards, and never stands below
   an offset whose write was acknowledged before the query was sent.
5. commits: an offset fetch never returns less than the last offset commit acknowledged
   before it was sent (a lost or regressed commit), nor an offset nobody committed.
6. transactions: read_committed sees every value of an acknowledged commit, none of an
   acknowledged abort, and all or none of a transaction whose outcome is unknown; nothing
   appears twice.
7. liveness: once the faults stop and every node runs, every replica is back in sync
   within the harness's bound (a `not-healed` event says it was not), and no node's log shows
   a panic or a fatal Raft error (a `node-broken` event: such a node may look whole while its
   controller has stopped for good).

Usage: python3 checker.py HISTORY.jsonl  (exit 1 when there are violations)
"""
import json
import sys
from collections import defaultdict

PROPERTIES = {
    1: "no acknowledged write lost",
    2: "no duplicates; one value per (partition, offset)",
    3: "consumers see contiguous offsets within a session",
    4: "ListOffsets latest never goes backwards or below an acknowledged write",
    5: "acknowledged offset commits never lost or regressed",
    6: "read_committed sees no aborted, torn or lost transactions",
    7: "every replica back in sync after healing; no node broken",
}


def violation(prop, kind, **detail):
    return {"property": prop, "kind": kind, **detail}


def check(events):
    by_type = defaultdict(list)
    for e in events:
        by_type[e["type"]].append(e)
    violations = []
    writes, client_resends = check_writes(by_type)
    violations += writes
    violations += check_sessions(by_type["read"])
    violations += check_list_offsets(by_type["list-offsets"], by_type["write"])
    violations += check_commits(by_type["commit"], by_type["committed"])
    violations += check_transactions(by_type["txn"], by_type["txn-final"])
    stats = {
        "writes": len(by_type["write"]),
        "writes_ok": sum(1 for w in by_type["write"] if w["outcome"] == "ok"),
        "writes_ok_without_offset": sum(1 for w in by_type["write"]
                                        if w["outcome"] == "ok" and w.get("offset") is None),
        "writes_unknown": sum(1 for w in by_type["write"] if w["outcome"] == "unknown"),
        "writes_failed": sum(1 for w in by_type["write"] if w["outcome"] == "failed"),
        "final_records": len(by_type["final"]),
        "live_reads": len(by_type["read"]),
        "read_sessions": len({r["session"] for r in by_type["read"]}),
        "list_offsets": len(by_type["list-offsets"]),
        "commits_ok": sum(1 for c in by_type["commit"] if c["outcome"] == "ok"),
        "commit_fetches": len(by_type["committed"]),
        "txns": len(by_type["txn"]),
        "txns_committed": sum(1 for t in by_type["txn"] if t["outcome"] == "commit-ok"),
        "txns_aborted": sum(1 for t in by_type["txn"] if t["outcome"] == "abort-ok"),
        "txns_unknown": sum(1 for t in by_type["txn"] if t["outcome"] == "unknown"),
        "faults": len(by_type["fault"]),
        "unsettled_after_fault": len(by_type["unsettled"]),
        "harness_errors": len(by_type["harness-error"]),
        "client_resends": len(client_resends),
    }
    for e in by_type["not-healed"]:
        violations.append(violation(7, "not-healed", within=e["within"], isr=e["isr"]))
    for e in by_type["node-broken"]:
        violations.append(violation(7, "node-broken", node=e["node"], line=e["line"]))
    if by_type["write"] and not by_type["final-end"]:
        violations.append(violation(1, "no-final-read", detail="the history has no final read"))
    return {"ok": not violations, "violations": violations, "stats": stats,
            "client_resends": client_resends}


def check_writes(by_type):
    out = []
    final = {}  # (partition, offset) -> value
    where = defaultdict(list)  # value -> [(partition, offset)]
    for r in by_type["final"]:
        final[(r["partition"], r["offset"])] = r["value"]
        where[r["value"]].append((r["partition"], r["offset"]))
    ends = {e["partition"]: e["high"] for e in by_type["final-end"]}
    for w in by_type["write"]:
        if w["outcome"] != "ok":
            continue
        if w.get("offset") is None:
            # Acknowledged without an offset (librdkafka reports a retried idempotent batch
            # it concludes was persisted this way): it must be in the log, somewhere.
            if w["value"] not in where:
                out.append(violation(1, "lost", partition=w["partition"], offset=None,
                                     value=w["value"], found_there=None, found_at=[],
                                     acked_at=w["complete"], log_end=ends.get(w["partition"])))
            continue
        at = (w["partition"], w["offset"])
        got = final.get(at)
        if got == w["value"]:
            continue
        found = where.get(w["value"], [])
        kind = "lost" if got is None else "overwritten"
        out.append(violation(1, kind, partition=at[0], offset=at[1], value=w["value"],
                             found_there=got, found_at=found, acked_at=w["complete"],
                             log_end=ends.get(at[0])))
    identity = {(e["partition"], e["offset"]): (e["producer_id"], e["producer_epoch"],
                                                 e["sequence"]) for e in by_type["identity"]}
    client_resends = []
    for value, places in where.items():
        if len(places) > 1:
            copies = [{"partition": p, "offset": o, "identity": identity.get((p, o))}
                      for p, o in sorted(places)]
            if resent_under_new_epochs(copies):
                client_resends.append({"value": value, "copies": copies})
            else:
                out.append(violation(2, "duplicate", value=value, at=sorted(places),
                                     copies=copies))
    seen = {}
    for r in by_type["read"]:
        at = (r["partition"], r["offset"])
        if at in final and final[at] != r["value"]:
            out.append(violation(2, "conflict", partition=at[0], offset=at[1],
                                 read_live=r["value"], read_final=final[at],
                                 session=r["session"], t=r["t"]))
        elif at not in final and at in seen and seen[at] != r["value"]:
            out.append(violation(2, "conflict", partition=at[0], offset=at[1],
                                 values=[seen[at], r["value"]], session=r["session"]))
        seen.setdefault(at, r["value"])
        if at not in final and ends.get(at[0]) is not None and at[1] >= ends[at[0]]:
            out.append(violation(2, "read-then-gone", partition=at[0], offset=at[1],
                                 value=r["value"], session=r["session"], t=r["t"],
                                 log_end=ends[at[0]]))
    return out, client_resends


def resent_under_new_epochs(copies):
    """True when every copy's identity is known and they read as one client sending a value
    again after bumping its epoch: one partition, one producer id, and epochs strictly rising
    with the offset (a copy under an older epoch after a newer one would be a broker accepting
    a fenced epoch)."""
    if any(c["identity"] is None for c in copies):
        return False
    if len({c["partition"] for c in copies}) != 1:
        return False
    ordered = sorted(copies, key=lambda c: c["offset"])
    pids = {c["identity"][0] for c in ordered}
    epochs = [c["identity"][1] for c in ordered]
    return len(pids) == 1 and all(a < b for a, b in zip(epochs, epochs[1:]))


def check_sessions(reads):
    out = []
    last = {}  # (session, partition) -> offset
    for r in reads:
        key = (r["session"], r["partition"])
        prev = last.get(key)
        if prev is not None and r["offset"] != prev + 1:
            kind = "backwards" if r["offset"] <= prev else "skip"
            out.append(violation(3, kind, session=r["session"], partition=r["partition"],
                                 previous=prev, offset=r["offset"], t=r["t"]))
        last[key] = r["offset"]
    return out


def check_list_offsets(polls, writes):
    out = []
    acked = defaultdict(list)  # partition -> [(complete, offset)] sorted by complete
    for w in writes:
        if w["outcome"] == "ok" and w.get("offset") is not None:
            acked[w["partition"]].append((w["complete"], w["offset"]))
    for p in acked:
        acked[p].sort()
    highest = {}  # partition -> (high, poll)
    cursor, floor = defaultdict(int), defaultdict(lambda: -1)
    for poll in sorted(polls, key=lambda e: e["invoke"]):
        p = poll["partition"]
        prev = highest.get(p)
        if prev is not None and poll["high"] < prev[0]:
            out.append(violation(4, "backwards", partition=p, high=poll["high"],
                                 before=prev[0], before_at=prev[1]["complete"],
                                 at=poll["invoke"]))
        if prev is None or poll["high"] > prev[0]:
            highest[p] = (poll["high"], poll)
        lst = acked[p]
        while cursor[p] < len(lst) and lst[cursor[p]][0] < poll["invoke"]:
            floor[p] = max(floor[p], lst[cursor[p]][1])
            cursor[p] += 1
        if poll["high"] <= floor[p]:
            out.append(violation(4, "below-acked", partition=p, high=poll["high"],
                                 acked_offset=floor[p], at=poll["invoke"]))
    return out


def check_commits(commits, fetches):
    out = []
    tried = defaultdict(set)
    acked = defaultdict(list)  # (group, partition) -> [(complete, offset)]
    for c in commits:
        key = (c["group"], c["partition"])
        tried[key].add(c["offset"])
        if c["outcome"] == "ok":
            acked[key].append((c["complete"], c["offset"]))
    for f in fetches:
        key = (f["group"], f["partition"])
        floor = max((o for t, o in acked[key] if t < f["invoke"]), default=None)
        got = f["offset"]
        if floor is not None and got < floor:
            out.append(violation(5, "lost" if got < 0 else "regressed", group=key[0],
                                 partition=key[1], fetched=got, acked=floor, at=f["invoke"]))
        elif got >= 0 and got not in tried[key]:
            out.append(violation(5, "invented", group=key[0], partition=key[1], fetched=got,
                                 at=f["invoke"]))
    return out


def check_transactions(txns, reads):
    out = []
    seen = defaultdict(list)
    for r in reads:
        seen[r["value"]].append((r["partition"], r["offset"]))
    for value, places in seen.items():
        if len(places) > 1:
            out.append(violation(6, "duplicate", value=value, at=sorted(places)))
    known = set()
    for t in txns:
        visible = [v for v in t["values"] if v in seen]
        known.update(t["values"])
        missing = [v for v in t["values"] if v not in seen]
        if t["outcome"] == "commit-ok" and missing:
            out.append(violation(6, "committed-lost", txn=t["id"], missing=missing,
                                 visible=visible))
        elif t["outcome"] == "abort-ok" and visible:
            out.append(violation(6, "aborted-read", txn=t["id"],
                                 visible={v: seen[v] for v in visible}))
        elif t["outcome"] == "unknown" and visible and missing:
            out.append(violation(6, "torn", txn=t["id"], visible=visible, missing=missing))
    for value in seen:
        if value not in known:
            out.append(violation(6, "unknown-value", value=value, at=seen[value]))
    return out


def report_text(result, limit=50):
    lines = ["chaos checker: " + ("PASS" if result["ok"] else
                                  f"FAIL ({len(result['violations'])} violations)")]
    for k, v in result["stats"].items():
        lines.append(f"  {k}: {v}")
    counts = defaultdict(int)
    for v in result["violations"]:
        counts[(v["property"], v["kind"])] += 1
    for prop, name in PROPERTIES.items():
        found = {k: n for (p, k), n in counts.items() if p == prop}
        status = "ok" if not found else ", ".join(f"{n} {k}" for k, n in found.items())
        lines.append(f"  [{prop}] {name}: {status}")
    for v in result["violations"][:limit]:
        lines.append("  " + json.dumps(v, sort_keys=True))
    for r in result.get("client_resends", [])[:limit]:
        lines.append("  client re-send under a new epoch (not a broker violation): "
                     + json.dumps(r, sort_keys=True))
    if len(result["violations"]) > limit:
        lines.append(f"  ... and {len(result['violations']) - limit} more (report.json)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from history import load

    result = check(load(sys.argv[1]))
    print(report_text(result))
    sys.exit(0 if result["ok"] else 1)
