//! SVG plots of a run, drawn with plotters' SVG backend (text stays SVG <text>, so no font
//! library is needed): device throughput and p99 against block size and queue depth, Sluice
//! throughput and p99 against each swept factor, and the Sluice-vs-device roofline. Pure
//! functions of the CSV rows; main thread.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{LabError, Result};
use crate::probe::ProbeRow;
use crate::sweep::{SweepRow, bytes_label};

/// One line on a two-panel chart: a value per category (None where not measured).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Left panel values (throughput).
    pub left: Vec<Option<f64>>,
    /// Right panel values (p99 latency).
    pub right: Vec<Option<f64>>,
}

/// A chart with categories on x and two panels side by side.
#[derive(Debug, Clone)]
pub struct TwoPanel {
    /// Title over both panels.
    pub title: String,
    /// x axis description.
    pub x_desc: String,
    /// Category labels.
    pub categories: Vec<String>,
    /// Left panel's y description.
    pub left_desc: String,
    /// Right panel's y description.
    pub right_desc: String,
    /// The lines.
    pub series: Vec<Series>,
}

fn plot_err<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> LabError + '_ {
    move |e| LabError::Plot {
        path: path.to_path_buf(),
        detail: format!("{e:?}"),
    }
}

/// Draws `chart` to `path` as SVG.
pub fn draw_two_panel(path: &Path, chart: &TwoPanel) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err(path))?;
    let root = root
        .titled(&chart.title, ("sans-serif", 22))
        .map_err(plot_err(path))?;
    let (l, r) = root.split_horizontally(600);
    let left: Vec<Vec<Option<f64>>> = chart.series.iter().map(|s| s.left.clone()).collect();
    let right: Vec<Vec<Option<f64>>> = chart.series.iter().map(|s| s.right.clone()).collect();
    panel(path, &l, chart, &chart.left_desc, &left)?;
    panel(path, &r, chart, &chart.right_desc, &right)?;
    root.present().map_err(plot_err(path))
}

fn panel(
    path: &Path,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &TwoPanel,
    y_desc: &str,
    values: &[Vec<Option<f64>>],
) -> Result<()> {
    let n = chart.categories.len().max(1);
    let ymax = values
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-3)
        * 1.15;
    // Categories sit at x = 0..n-1 on a numeric axis from -0.5 to n-0.5: with at most n labels
    // plotters puts its ticks exactly on the integers (plotters' segmented axis adds an empty
    // slot at the end).
    let mut c = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)
        .map_err(plot_err(path))?;
    let labels = &chart.categories;
    c.configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| category(labels, *x))
        .x_desc(chart.x_desc.as_str())
        .y_desc(y_desc)
        .draw()
        .map_err(plot_err(path))?;
    for (k, (s, vals)) in chart.series.iter().zip(values).enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let pts: Vec<(f64, f64)> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|y| (i as f64, y)))
            .collect();
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(plot_err(path))?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        c.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(plot_err(path))?;
    }
    if chart.series.len() < 2 {
        // One line: the title names it, and a legend box would only hide data.
        return Ok(());
    }
    // Throughput and latency mostly rise with x, so the upper left is the emptiest corner.
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err(path))
}

/// The label of the category at tick `x` (empty between categories).
fn category(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
}

/// The roofline: device write MB/s against I/O size (O_DIRECT and buffered), Sluice produce
/// MB/s against record size, and Sluice's best step as a horizontal line.
pub fn draw_roofline(path: &Path, probe: &[ProbeRow], sweeps: &[SweepRow]) -> Result<()> {
    let device: Vec<(String, Vec<(f64, f64)>)> = ["direct", "buffered"]
        .iter()
        .map(|mode| {
            let pts = probe_points(
                probe,
                "block_size",
                "seq_write",
                mode,
                |r| r.block_size as f64,
                |r| r.mb_per_sec,
            );
            (
                format!("device seq write, {mode} (qd {})", bs_qd(probe)),
                pts,
            )
        })
        .collect();
    let mut sluice: Vec<(f64, f64)> = throughput_rows(sweeps)
        .filter(|r| r.factor == "record_size" || r.factor == "baseline")
        .map(|r| (r.record_size as f64, r.mb_per_sec))
        .collect();
    sluice.sort_by(|a, b| a.0.total_cmp(&b.0));
    let best = throughput_rows(sweeps)
        .map(|r| r.mb_per_sec)
        .fold(0.0, f64::max);
    let all_y = device
        .iter()
        .flat_map(|d| d.1.iter().map(|p| p.1))
        .chain(sluice.iter().map(|p| p.1));
    let ys: Vec<f64> = all_y.filter(|y| *y > 0.0).chain([best]).collect();
    let ymax = ys.iter().copied().fold(1.0, f64::max) * 2.0;
    let ymin = (ys.iter().copied().fold(f64::MAX, f64::min) / 3.0).clamp(0.1, ymax / 10.0);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err(path))?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            "Sluice vs device: MB/s against I/O size",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (64f64..(4u64 << 20) as f64).log_scale(),
            (ymin..ymax).log_scale(),
        )
        .map_err(plot_err(path))?;
    c.configure_mesh()
        .x_desc("bytes per write (device: block size; Sluice: record size)")
        .y_desc("MB/s")
        .x_label_formatter(&|x| short_bytes(*x))
        .draw()
        .map_err(plot_err(path))?;
    for (k, (name, pts)) in device.iter().enumerate() {
        line(&mut c, path, name, pts, Palette99::pick(k).to_rgba())?;
    }
    line(
        &mut c,
        path,
        "Sluice produce (acks=all), by record size",
        &sluice,
        BLUE.to_rgba(),
    )?;
    let roof = vec![(64.0, best.max(0.1)), ((4u64 << 20) as f64, best.max(0.1))];
    line(
        &mut c,
        path,
        &format!("Sluice best step: {best:.0} MB/s"),
        &roof,
        BLACK.mix(0.6),
    )?;
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err(path))?;
    root.present().map_err(plot_err(path))
}

/// Axis label for a byte count on a log axis, in decimal units because the ticks are powers
/// of ten.
fn short_bytes(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.0}MB", x / 1e6),
        x if x >= 1e3 => format!("{:.0}kB", x / 1e3),
        x => format!("{x:.0}B"),
    }
}

type LogChart<'a> = ChartContext<
    'a,
    SVGBackend<'a>,
    Cartesian2d<
        plotters::coord::combinators::LogCoord<f64>,
        plotters::coord::combinators::LogCoord<f64>,
    >,
>;

fn line(
    c: &mut LogChart<'_>,
    path: &Path,
    name: &str,
    pts: &[(f64, f64)],
    color: RGBAColor,
) -> Result<()> {
    let pts: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|p| p.0 > 0.0 && p.1 > 0.0)
        .collect();
    c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
        .map_err(plot_err(path))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    c.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
        .map_err(plot_err(path))?;
    Ok(())
}

fn bs_qd(probe: &[ProbeRow]) -> u64 {
    probe
        .iter()
        .find(|r| r.sweep == "block_size")
        .map_or(0, |r| r.queue_depth)
}

fn probe_points(
    probe: &[ProbeRow],
    sweep: &str,
    workload: &str,
    mode: &str,
    x: impl Fn(&ProbeRow) -> f64,
    y: impl Fn(&ProbeRow) -> f64,
) -> Vec<(f64, f64)> {
    probe
        .iter()
        .filter(|r| r.status == "ok" && r.workload == workload && r.io_mode == mode)
        .filter(|r| {
            r.sweep == sweep
                || (sweep == "block_size"
                    && r.queue_depth == bs_qd(probe)
                    && r.ring == "default"
                    && !r.reg_buffers
                    && !r.reg_files)
        })
        .map(|r| (x(r), y(r)))
        .collect()
}

fn throughput_rows(sweeps: &[SweepRow]) -> impl Iterator<Item = &SweepRow> {
    sweeps
        .iter()
        .filter(|r| r.status == "ok" && r.phase == "throughput")
}

/// Device MB/s and p99 against `x` (block_size or queue_depth) for the rows of that sweep.
pub fn probe_chart(probe: &[ProbeRow], sweep: &str) -> TwoPanel {
    let rows: Vec<&ProbeRow> = probe.iter().filter(|r| r.sweep == sweep).collect();
    let x = |r: &ProbeRow| {
        if sweep == "block_size" {
            r.block_size
        } else {
            r.queue_depth
        }
    };
    let mut xs: Vec<u64> = rows.iter().map(|r| x(r)).collect();
    xs.sort_unstable();
    xs.dedup();
    let mut names: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.workload.clone(), r.io_mode.clone()))
        .collect();
    names.dedup();
    names.sort();
    names.dedup();
    let series = names
        .iter()
        .map(|(w, m)| {
            let find = |v: u64| {
                rows.iter()
                    .find(|r| &r.workload == w && &r.io_mode == m && x(r) == v && r.status == "ok")
            };
            Series {
                name: format!("{w} {m}"),
                left: xs.iter().map(|&v| find(v).map(|r| r.mb_per_sec)).collect(),
                right: xs.iter().map(|&v| find(v).map(|r| r.p99_us)).collect(),
            }
        })
        .collect();
    let (title, x_desc, categories) = if sweep == "block_size" {
        let qd = rows.first().map_or(0, |r| r.queue_depth);
        (
            format!("Device: throughput and p99 by block size (queue depth {qd})"),
            "block size",
            xs.iter().map(|&v| bytes_label(v)).collect(),
        )
    } else {
        (
            "Device: throughput and p99 by queue depth (O_DIRECT; 4 KiB random, larger sequential)"
                .to_string(),
            "queue depth",
            xs.iter().map(u64::to_string).collect(),
        )
    };
    TwoPanel {
        title,
        x_desc: x_desc.into(),
        categories,
        left_desc: "MB/s".into(),
        right_desc: "p99 latency (µs)".into(),
        series,
    }
}

/// The value of `factor` in a sweep row, as (sort key, label).
pub fn factor_value(r: &SweepRow, factor: &str) -> (f64, String) {
    match factor {
        "segment_bytes" => (r.segment_bytes as f64, bytes_label(r.segment_bytes)),
        "flush" => (flush_rank(&r.flush), r.flush.clone()),
        "writeback_bytes" => (r.writeback_bytes as f64, bytes_label(r.writeback_bytes)),
        "shards" => (r.shards as f64, r.shards.to_string()),
        "record_size" => (r.record_size as f64, bytes_label(r.record_size)),
        "partitions_per_shard" => {
            let pps = r.partitions / r.shards.max(1);
            (pps as f64, pps.to_string())
        }
        "producers" => (r.producers as f64, r.producers.to_string()),
        "linger_ms" => (r.linger_ms as f64, r.linger_ms.to_string()),
        "log_io" => {
            let direct = r.log_io == "direct";
            let flushed = r.flush != "none";
            let rank = f64::from(u8::from(flushed) * 2 + u8::from(direct));
            (rank, crate::sweep::log_io_label(&r.log_io, &r.flush))
        }
        _ => (0.0, r.label.clone()),
    }
}

/// Orders flush policies from none (cheapest) to every message (most syncs).
fn flush_rank(label: &str) -> f64 {
    if label == "none" {
        return 0.0;
    }
    let n: f64 = label
        .rsplit('=')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    if label.starts_with("flush.messages") {
        1e9 - n
    } else {
        1e6 - n
    }
}

/// The factors that have rows, in plan order.
pub const FACTORS: [&str; 9] = [
    "segment_bytes",
    "flush",
    "writeback_bytes",
    "shards",
    "record_size",
    "partitions_per_shard",
    "producers",
    "linger_ms",
    "log_io",
];

/// The factor's steps (its own and the baseline), ordered by value: (label, throughput row,
/// latency row).
pub fn factor_points<'a>(
    sweeps: &'a [SweepRow],
    factor: &str,
) -> Vec<(String, Option<&'a SweepRow>, Option<&'a SweepRow>)> {
    let mut keys: Vec<(f64, String)> = sweeps
        .iter()
        .filter(|r| r.factor == factor || r.factor == "baseline")
        .map(|r| factor_value(r, factor))
        .collect();
    keys.sort_by(|a, b| a.0.total_cmp(&b.0));
    keys.dedup_by(|a, b| a.1 == b.1);
    let find = |label: &str, phase: &str| {
        sweeps.iter().find(|r| {
            (r.factor == factor || r.factor == "baseline")
                && r.phase == phase
                && r.status == "ok"
                && factor_value(r, factor).1 == label
        })
    };
    keys.into_iter()
        .map(|(_, l)| {
            let t = find(&l, "throughput");
            let lat = find(&l, "latency");
            (l, t, lat)
        })
        .collect()
}

/// Sluice MB/s (unpaced) and p99 (open-loop) against one factor.
pub fn sweep_chart(sweeps: &[SweepRow], factor: &str) -> TwoPanel {
    let pts = factor_points(sweeps, factor);
    let rate = sweeps
        .iter()
        .find(|r| r.phase == "latency" && r.status == "ok")
        .map_or(String::from("?"), |r| r.target_rate.clone());
    TwoPanel {
        title: format!("Sluice: produce MB/s (unpaced) and p99 (open-loop) by {factor}"),
        x_desc: factor.into(),
        categories: pts.iter().map(|p| p.0.clone()).collect(),
        left_desc: "MB/s (acks=all, unpaced)".into(),
        right_desc: format!("p99 ms at a fixed byte rate (baseline: {rate} msg/s)"),
        series: vec![Series {
            name: "Sluice".into(),
            left: pts.iter().map(|p| p.1.map(|r| r.mb_per_sec)).collect(),
            right: pts.iter().map(|p| p.2.map(|r| r.p99_ms)).collect(),
        }],
    }
}

/// Draws every plot a run has data for into `dir`; returns the files written.
pub fn draw_all(dir: &Path, probe: &[ProbeRow], sweeps: &[SweepRow]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for sweep in ["block_size", "queue_depth"] {
        if probe.iter().any(|r| r.sweep == sweep && r.status == "ok") {
            let p = dir.join(format!("probe-{}.svg", sweep.replace('_', "-")));
            draw_two_panel(&p, &probe_chart(probe, sweep))?;
            out.push(p);
        }
    }
    for factor in FACTORS {
        if sweeps.iter().any(|r| r.factor == factor) {
            let p = dir.join(format!("sweep-{}.svg", factor.replace('_', "-")));
            draw_two_panel(&p, &sweep_chart(sweeps, factor))?;
            out.push(p);
        }
    }
    if !probe.is_empty() || !sweeps.is_empty() {
        let p = dir.join("roofline.svg");
        draw_roofline(&p, probe, sweeps)?;
        out.push(p);
    }
    Ok(out)
}
