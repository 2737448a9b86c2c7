#!/usr/bin/env python3
"""librdkafka test-runner output -> `<id>\t<PASS|FAIL|SKIP>\t<detail>` lines.

usage: librdkafka_report.py REPORT_JSON RUNNER_LOG

The JSON report (TEST_REPORT=...) has every test's state but not its failure reason; the
summary table in the log has the reason. When the runner died before writing the report,
the per-test "Test X PASSED/FAILED" banners in the log are used instead.
"""
import json
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\(B")
# Summary row: "| 0001_multiobj                 |     PASSED |   1.234s | reason"
ROW = re.compile(r"^\|\s*(\d{4}\w*)\s*\|\s*([A-Z]+)\s*\|\s*[\d.]+s\s*\|\s*(.*)$")
BANNER = re.compile(r"=+ Test (\d{4}\w*) (PASSED|FAILED|SKIPPED) =+")
STATE = {"PASSED": "PASS", "FAILED": "FAIL", "RUNNING": "FAIL", "SKIPPED": "SKIP", "DNS": "SKIP"}


def main():
    report_path, log_path = sys.argv[1:3]
    with open(log_path, errors="replace") as f:
        log = ANSI.sub("", f.read())

    reasons, banners = {}, {}
    for line in log.splitlines():
        m = ROW.match(line.strip())
        if m and m.group(3).strip():
            reasons[m.group(1)] = m.group(3).strip()
        m = BANNER.search(line)
        if m:
            banners[m.group(1)] = m.group(2)

    states = {}
    try:
        with open(report_path) as f:
            report = json.load(f)
        for name, t in report["tests"].items():
            if name.startswith("<"):
                continue  # the runner's own <MAIN> pseudo-test
            states[name] = t["state"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        states = dict(banners)

    for name in sorted(states):
        state = states[name]
        detail = reasons.get(name, "")
        if state == "RUNNING":
            detail = "still running when the runner stopped (timeout or abort) " + detail
        elif state == "DNS":
            detail = "did not start (runner stopped early)"
        print(f"{name}\t{STATE.get(state, 'FAIL')}\t{detail.replace(chr(9), ' ')}")


if __name__ == "__main__":
    main()
