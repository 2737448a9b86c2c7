#!/usr/bin/env python3
"""Summarize one perf/compare.sh run directory as Markdown: throughput, latency and ratios.

Reads the raw files compare.sh wrote (sluice-perf JSON, rdkafka_performance tables, iperf3 JSON)
and prints a table; a missing or failed measurement shows as "-" with the reason listed below.
All rates in MB/s are 10^6 bytes of record values per second; iperf3 in the same unit.
"""

import json
import os
import sys

BROKERS = ("sluice", "tansu")


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def sp_rate(run_dir, broker, what):
    """(MB/s, msg/s) from a sluice-perf JSON record, or None."""
    rec = load_json(os.path.join(run_dir, f"{broker}-sp-{what}.json"))
    if not rec or not rec.get("runs"):
        return None
    d = rec["runs"][0].get(what)
    if not d or d["msgs"] == 0:
        return None
    return d["mb_per_sec"], d["msgs_per_sec"]


def rk_last_row(run_dir, name):
    """The last row of an rdkafka_performance -u table as a dict by column name, or None."""
    path = os.path.join(run_dir, name)
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return None
    header, last = None, None
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("| ").split("|")]
        if "elapsed" in cells:
            header = cells
        elif header and len(cells) == len(header):
            last = dict(zip(header, cells))
    return last


def rk_rate(run_dir, broker, what, suffix=""):
    """(MB/s, msg/s) from the last row of an rdkafka_performance -u table, or None.

    Producer columns: elapsed msgs bytes rtt dr dr_m/s dr_MB/s ...; consumer: elapsed msgs
    bytes rtt m/s MB/s ...: the header names the columns, so read them by name.
    """
    last = rk_last_row(run_dir, f"{broker}-rk-{what}{suffix}.txt")
    if not last:
        return None
    mb, msgs = ("dr_MB/s", "dr_m/s") if what == "produce" else ("MB/s", "m/s")
    try:
        if int(last["msgs"]) == 0 or float(last[mb]) == 0:
            return None
        return float(last[mb]), float(last[msgs])
    except (KeyError, ValueError):
        return None


def latency(run_dir, broker, suffix=""):
    rec = load_json(os.path.join(run_dir, f"{broker}-latency{suffix}.json"))
    if not rec or not rec.get("runs"):
        return None
    return rec["runs"][0]


def iperf_mb(run_dir):
    rec = load_json(os.path.join(run_dir, "iperf3.json"))
    try:
        return rec["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
    except (TypeError, KeyError):
        return None


def step_gb(run_dir, label):
    """Record-value GB a cpu.csv step moved (all of it, warm-up included, as its CPU counts),
    or None: rdkafka_performance from its table, sluice-perf from its per-second timeline."""
    broker, _, rest = label.partition(" ")
    if rest.startswith("rdkafka_performance"):
        what = "produce" if "produce" in rest else "consume"
        suffix = "-cold" if rest.endswith("cold") else ""
        last = rk_last_row(run_dir, f"{broker}-rk-{what}{suffix}.txt")
        try:
            return int(last["bytes"]) / 1e9
        except (TypeError, KeyError, ValueError):
            return None
    if rest.startswith("sluice-perf"):
        what = rest.split()[-1]
        rec = load_json(os.path.join(run_dir, f"{broker}-sp-{what}.json"))
        try:
            field = "produced_bytes" if what == "produce" else "consumed_bytes"
            return sum(s[field] for s in rec["runs"][0]["timeline"]) / 1e9 or None
        except (TypeError, KeyError, IndexError):
            return None
    return None


def cpu_table(run_dir):
    """Broker CPU per step from cpu.csv: on 2 cores the clients usually saturate first, so the
    broker's CPU share, and its CPU per GB moved, are the fairer efficiency comparisons."""
    path = os.path.join(run_dir, "cpu.csv")
    if not os.path.exists(path):
        return []
    rows = [line.split(",") for line in open(path).read().splitlines()[1:] if line]
    out = ["", "CPU per step (broker pinned to one core; 'rest' = clients and anything else, of 2 cores):", "",
           "| step | wall s | broker CPU s | broker core busy | rest CPU s | GB moved | broker CPU s per GB |",
           "|---|---|---|---|---|---|---|"]
    for label, wall, broker, rest in rows:
        busy = float(broker) / float(wall) * 100 if float(wall) > 0 else 0
        gb = step_gb(run_dir, label)
        per_gb = float(broker) / gb if gb else None
        out.append(f"| {label} | {wall} | {broker} | {busy:.0f}% | {rest} | {fmt(gb, '{:.2f}')} "
                   f"| {fmt(per_gb, '{:.2f}')} |")
    return out


def page_cache(run_dir):
    """The dd page-cache write rates ('cold: ...', 'warm: ...'), or None."""
    path = os.path.join(run_dir, "page-cache.txt")
    if not os.path.exists(path):
        return None
    return "; ".join(open(path).read().split("\n")).strip("; ")


def fmt(x, spec="{:.1f}"):
    return "-" if x is None else spec.format(x)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main(run_dir):
    out = []
    env = os.path.join(run_dir, "env.txt")
    if os.path.exists(env):
        out += ["```", open(env).read().rstrip(), "```", ""]
    bw = iperf_mb(run_dir)
    out.append(f"iperf3 loopback: {fmt(bw)} MB/s")
    dd = page_cache(run_dir)
    if dd:
        out.append(f"page-cache write rate (dd): {dd}")
    out.append("")
    out.append("| broker | client | produce MB/s | produce msg/s | consume MB/s | consume msg/s |")
    out.append("|---|---|---|---|---|---|")
    rates = {}
    for b in BROKERS:
        for client, getter in (("sluice-perf", sp_rate), ("rdkafka_performance", rk_rate)):
            p = getter(run_dir, b, "produce")
            c = getter(run_dir, b, "consume")
            rates[(b, client)] = (p, c)
            out.append(
                f"| {b} | {client} | {fmt(p and p[0])} | {fmt(p and p[1], '{:.0f}')} "
                f"| {fmt(c and c[0])} | {fmt(c and c[1], '{:.0f}')} |"
            )
    cold = [(b, rk_rate(run_dir, b, "produce", "-cold")) for b in BROKERS]
    if any(r for _, r in cold):
        out.append("")
        out.append("rdkafka_performance produce with cold memory (the table above is warm):")
        out.append("")
        for b, r in cold:
            out.append(f"- {b}: {fmt(r and r[0])} MB/s, {fmt(r and r[1], '{:.0f}')} msg/s")
    out.append("")
    basis = open(os.path.join(run_dir, "latency-rate.txt")).read().strip() if os.path.exists(
        os.path.join(run_dir, "latency-rate.txt")) else "latency rate: unknown"
    out.append(f"End-to-end latency, due send time -> consumed, acks=all ({basis}):")
    out.append("")
    out.append("Client `rdkafka` is librdkafka through sluice-perf; `wire` is sluice-perf's own protocol client "
               "(`--client wire`), with its linger in env.txt (WIRE_LINGER_MS).")
    out.append("")
    out.append("| broker | client | achieved msg/s | p50 ms | p90 ms | p99 ms | p99.9 ms | p99.99 ms | max ms | produce-ack p50 ms | produce-ack p99 ms |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for b in BROKERS:
        for client, suffix in (("rdkafka", ""), ("wire", "-wire")):
            r = latency(run_dir, b, suffix)
            if r is None and suffix:
                continue  # a run from before the wire client
            c = r and r.get("consume")
            p = r and r.get("produce")
            if not c or not c["latency"]["count"]:
                out.append(f"| {b} | {client} | - | - | - | - | - | - | - | - | - |")
                continue
            l = c["latency"]
            pl = p and p["latency"]
            out.append(
                f"| {b} | {client} | {c['msgs_per_sec']:.0f} | {l['p50_ms']:.2f} | {l['p90_ms']:.2f} | {l['p99_ms']:.2f} "
                f"| {l['p999_ms']:.2f} | {l['p9999_ms']:.2f} | {l['max_ms']:.2f} "
                f"| {fmt(pl and pl['p50_ms'], '{:.2f}')} | {fmt(pl and pl['p99_ms'], '{:.2f}')} |"
            )
    out.append("")
    out.append("Ratios:")
    for client in ("sluice-perf", "rdkafka_performance"):
        (sp, sc), (tp, tc) = rates[("sluice", client)], rates[("tansu", client)]
        out.append(f"- {client}: Sluice/Tansu produce {fmt(ratio(sp and sp[0], tp and tp[0]), '{:.2f}')}, "
                   f"consume {fmt(ratio(sc and sc[0], tc and tc[0]), '{:.2f}')}; "
                   f"Sluice produce / iperf3 {fmt(ratio(sp and sp[0], bw), '{:.3f}')}")
    out += cpu_table(run_dir)
    failed = os.path.join(run_dir, "sluice-failed.txt")
    if os.path.exists(failed):
        out.append("")
        out.append(open(failed).read().strip())
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
