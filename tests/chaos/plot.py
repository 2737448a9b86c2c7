"""The run's timeline as a self-contained SVG (no plotting library): faults as shaded bands
labelled with their kind and node, acknowledged writes per second, and the median and
maximum acknowledgement latency per second."""
from collections import defaultdict
from statistics import median

W, H, LEFT, TOP = 1200, 520, 60, 30
PANEL = 190
COLORS = {"kill": "#e41a1c", "kill-leader": "#b2182b", "pause": "#377eb8",
          "pause-leader": "#2166ac", "latency": "#ff7f00", "blackhole": "#984ea3",
          "crash-isolated-leader": "#4d4d4d", "partition-isolate": "#4daf4a",
          "partition-isolate-leader": "#1b7837", "partition-bridge": "#a6d96a",
          "packet-loss": "#a65628", "disk-full": "#f781bf", "disk-full-leader": "#c51b7d"}


def timeline(events, path):
    writes = [e for e in events if e["type"] == "write"]
    faults = [e for e in events if e["type"] == "fault"]
    end = max([e.get("t", 0) for e in events] + [1])
    ok, bad, lat = defaultdict(int), defaultdict(int), defaultdict(list)
    for w in writes:
        s = int(w["complete"])
        if w["outcome"] == "ok":
            ok[s] += 1
            lat[s].append(w["complete"] - w["invoke"])
        else:
            bad[s] += 1
    x = lambda t: LEFT + (W - LEFT - 20) * t / end  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for f in faults:
        x0, x1 = x(f["start"]), x(f["end"])
        c = COLORS.get(f["kind"], "#999")
        out.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(1, x1 - x0):.1f}" '
                   f'height="{2 * PANEL + 30}" fill="{c}" opacity="0.18"/>')
        out.append(f'<text x="{x0 + 2:.1f}" y="{TOP - 4 - 10 * (faults.index(f) % 2)}" '
                   f'fill="{c}" font-size="9">{f["kind"]} n{f["node"]}</text>')
    secs = range(int(end) + 1)
    panels = [("acked writes/s (black), unknown outcomes/s (red)",
               [(ok, "black"), (bad, "red")], TOP),
              ("ack latency s: median (blue), max (orange)",
               [({s: median(v) for s, v in lat.items()}, "blue"),
                ({s: max(v) for s, v in lat.items()}, "orange")], TOP + PANEL + 30)]
    for title, series, y0 in panels:
        top = max([max(d.values(), default=0) for d, _ in series] + [1e-9])
        out.append(f'<text x="{LEFT}" y="{y0 + 12}">{title}; max {top:.3g}</text>')
        out.append(f'<line x1="{LEFT}" y1="{y0 + PANEL}" x2="{W - 20}" y2="{y0 + PANEL}" '
                   'stroke="#444"/>')
        for data, color in series:
            pts = " ".join(f"{x(s):.1f},{y0 + PANEL - (PANEL - 20) * data.get(s, 0) / top:.1f}"
                           for s in secs)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                       'stroke-width="1"/>')
    for s in range(0, int(end) + 1, max(1, int(end) // 12)):
        out.append(f'<text x="{x(s):.1f}" y="{H - 8}" text-anchor="middle">{s}s</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
