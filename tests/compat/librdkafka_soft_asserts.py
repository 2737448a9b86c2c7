#!/usr/bin/env python3
"""Fail librdkafka tests whose checks only print (their own `test_assert` says and goes on).

usage: librdkafka_soft_asserts.py RESULTS_TSV RUNNER_LOG

RESULTS_TSV is librdkafka_report.py's output; it is printed again with every test that
logged one of its known failure messages (SOFT_ASSERTS below) turned into FAIL, the message
as the detail. 0101_fetch_from_follower, for one, reports PASSED even when the consumer got
most of its bytes from the leader: it only prints "rxbytes was not highest ...".
"""
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\(B")
# A test's log line: "[0101_fetch_from_follower    /  7.718s] message"
LINE = re.compile(r"^\[(\d{4}\w*)\s*/\s*[\d.]+s\]\s*(.*)$")
# Says without a newline run into the next line's prefix: cut the message there.
NEXT = re.compile(r"\[\d{4}\w*\s*/")

# Test id -> the messages its printing-only checks emit when they fail (substrings).
SOFT_ASSERTS = {
    "0101_fetch_from_follower": [
        "Failed to create producer",
        "Failed to create topic",
        "Failed to acquire metadata",
        "expecting metadata for exactly one topic",
        "expecting three replicas",
        "Expected event type",
        "expecting describe config results to be not NULL",
        "Expected success, not",
        "Expecting 1 resource",
        "Failed to create KafkaConsumer",
        "expecting message value size to be 100",
        "expecting 'msg=' in message payload",
        "following 'msg=' in message payload",
        "message consumed out of order",
        "rxbytes was not highest",
        "expecting rxbytes of client.rack broker to be at least",
    ],
}


def soft_failures(log_path):
    """Test id -> the first failure message it printed."""
    found = {}
    with open(log_path, errors="replace") as f:
        for raw in f:
            m = LINE.match(ANSI.sub("", raw).strip())
            if not m:
                continue
            test, message = m.group(1), m.group(2)
            if test in found:
                continue
            if any(p in message for p in SOFT_ASSERTS.get(test, ())):
                found[test] = NEXT.split(message)[0].replace("\t", " ").strip()
    return found


def main():
    results_path, log_path = sys.argv[1:3]
    failed = soft_failures(log_path)
    with open(results_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0] in failed and parts[1] == "PASS":
                parts = [parts[0], "FAIL", "printed a failed check: " + failed[parts[0]]]
            print("\t".join(parts))


if __name__ == "__main__":
    main()
