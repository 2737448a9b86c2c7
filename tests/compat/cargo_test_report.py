#!/usr/bin/env python3
"""`cargo test` output -> `<binary>::<test>\t<PASS|FAIL|SKIP>\t<detail>` lines.

usage: cargo_test_report.py CARGO_TEST_LOG

The test binary comes from cargo's "Running tests/test_admin.rs (...)" line, so ids look like
`test_admin::test_topics`. The detail of a failure is the first line of its panic message.
"""
import re
import sys

RUNNING = re.compile(r"^\s*Running (?:unittests )?(\S+)")
RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)")
PANIC = re.compile(r"^---- (\S+) stdout ----")


def main():
    binary = "?"
    states, details = {}, {}
    pending_panic = None
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = RUNNING.match(line)
            if m:
                path = m.group(1)
                binary = path.rsplit("/", 1)[-1].removesuffix(".rs")
                continue
            m = RESULT.match(line)
            if m:
                test_id = f"{binary}::{m.group(1)}"
                states[test_id] = {"ok": "PASS", "FAILED": "FAIL", "ignored": "SKIP"}[m.group(2)]
                continue
            m = PANIC.match(line)
            if m:
                pending_panic = f"{binary}::{m.group(1)}"
                continue
            if pending_panic:
                # The message is the line after "thread '...' panicked at file:line:col:".
                if "panicked at" in line:
                    details[pending_panic] = line.strip()
                elif pending_panic in details and line.strip():
                    details[pending_panic] = line.strip() + " (" + details[pending_panic] + ")"
                    pending_panic = None
    for test_id in sorted(states):
        print(f"{test_id}\t{states[test_id]}\t{details.get(test_id, '')}")


if __name__ == "__main__":
    main()
