#!/usr/bin/env python3
"""Compare one suite's results with its allow-list.

usage: compare.py SUITE RESULTS_TSV ALLOW_FILE SKIP_REASONS_FILE

RESULTS_TSV holds one line per test: `<id>\t<PASS|FAIL|SKIP>\t<detail>`.
ALLOW_FILE holds the ids that must pass, one a line (`#` starts a comment).
SKIP_REASONS_FILE holds `<id> <one-line reason>` for tests deliberately left off.

Exit status 1 when a listed test did not pass (a regression, including a listed test that
did not run at all); 0 otherwise. A test that passes but is not listed is reported so the
list can grow; it never fails the run, because the list must only grow by a reviewed commit.
"""
import sys


def read_ids(path):
    """Ids from a list file: the first word of each non-comment line."""
    ids = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                word, _, rest = line.partition(" ")
                ids[word] = rest.strip()
    except FileNotFoundError:
        pass
    return ids


def main():
    suite, results_path, allow_path, reasons_path = sys.argv[1:5]
    results = {}
    with open(results_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[0]:
                continue
            results[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    allow = read_ids(allow_path)
    reasons = read_ids(reasons_path)

    regressions = []
    for test_id in sorted(allow):
        state, detail = results.get(test_id, ("NOT RUN", ""))
        if state != "PASS":
            regressions.append((test_id, state, detail))
    newly = sorted(t for t, (s, _) in results.items() if s == "PASS" and t not in allow)
    unexplained = sorted(
        t for t, (s, _) in results.items() if s == "FAIL" and t not in allow and t not in reasons
    )
    counts = {s: 0 for s in ("PASS", "FAIL", "SKIP")}
    for state, _ in results.values():
        counts[state] = counts.get(state, 0) + 1

    print(f"[{suite}] pass {counts['PASS']}, fail {counts['FAIL']}, skip {counts['SKIP']}; "
          f"allow-list {len(allow)}, regressions {len(regressions)}")
    for test_id, state, detail in regressions:
        print(f"[{suite}] REGRESSION {test_id}: {state} {detail[:300]}")
    for test_id in newly:
        print(f"[{suite}] newly passing (add to {allow_path}): {test_id}")
    for test_id in unexplained:
        detail = results[test_id][1]
        print(f"[{suite}] failing with no reason in {reasons_path}: {test_id}: {detail[:200]}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
