//! `sluice-plot RUN_DIR`: the pictures of a recorded compare run, as SVG next to its data.
//!
//! - `latency.svg`: every latency histogram of the run (`hgrm-<broker>/*.hgrm`, written by
//!   `sluice-perf --hgrm-dir`) as a percentile distribution: latency on a log scale against
//!   the percentile on HdrHistogram's usual 1/(1-p) log axis, one line per broker and kind.
//! - `throughput.svg`: every sluice-perf step of the run (`<broker>-sp-*.json` and
//!   `<broker>-latency.json`) as MB/s per second of the run, warm-up and drain included.
//!
//! A plain command-line tool; it reads only files the run wrote.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

const SIZE: (u32, u32) = (1000, 600);

/// One line of a chart: its legend and its points.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        bail!("usage: sluice-plot RUN_DIR (a perf/runs/... directory of perf/compare.sh)");
    };
    let dir = PathBuf::from(dir);
    let latency = latency_series(&dir)?;
    if latency.is_empty() {
        eprintln!("no .hgrm files under {}: no latency.svg", dir.display());
    } else {
        let out = dir.join("latency.svg");
        draw_latency(&out, &latency)?;
        println!("wrote {}", out.display());
    }
    let throughput = throughput_series(&dir)?;
    if throughput.is_empty() {
        eprintln!(
            "no sluice-perf timelines in {}: no throughput.svg",
            dir.display()
        );
    } else {
        let out = dir.join("throughput.svg");
        draw_throughput(&out, &throughput)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Sorted entries of `dir` (a stable legend order from run to run).
fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    Ok(paths)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `hgrm-<broker>/<scenario>-<rate>-<direction>.hgrm` files as (1/(1-p), ms) points.
fn latency_series(dir: &Path) -> anyhow::Result<Vec<Series>> {
    let mut out = Vec::new();
    for sub in sorted_entries(dir)? {
        let name = file_stem(&sub);
        let Some(broker) = name.strip_prefix("hgrm-") else {
            continue;
        };
        for file in sorted_entries(&sub)? {
            if file.extension().is_none_or(|e| e != "hgrm") {
                continue;
            }
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let direction = match file_stem(&file).rsplit('-').next() {
                Some("produce") => "produce ack",
                Some("consume") => "end to end",
                _ => "latency",
            };
            out.push(Series {
                name: format!("{broker}: {direction}"),
                points: parse_hgrm(&text),
            });
        }
    }
    Ok(out)
}

/// The rows of HdrHistogram's percentile distribution that have a finite 1/(1-p), as
/// (1/(1-p), value) pairs.
fn parse_hgrm(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let [value, _, _, inverse] = cols.as_slice() else {
                return None;
            };
            Some((inverse.parse().ok()?, value.parse().ok()?))
        })
        .filter(|(x, y): &(f64, f64)| *x >= 1.0 && *y > 0.0)
        .collect()
}

/// Per-second MB/s of each sluice-perf step (`*-sp-*.json`, `*-latency.json`) that has a
/// timeline; a produce-and-consume step gives two lines.
fn throughput_series(dir: &Path) -> anyhow::Result<Vec<Series>> {
    let mut out = Vec::new();
    for file in sorted_entries(dir)? {
        let stem = file_stem(&file);
        let is_step = stem.contains("-sp-") || stem.ends_with("-latency");
        if !is_step || file.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?,
        )
        .with_context(|| format!("parsing {}", file.display()))?;
        let Some(timeline) = json["runs"][0]["timeline"].as_array() else {
            continue;
        };
        for (field, what) in [
            ("produced_bytes", "produced"),
            ("consumed_bytes", "consumed"),
        ] {
            let points: Vec<(f64, f64)> = timeline
                .iter()
                .filter_map(|s| Some((s["t_s"].as_f64()?, s[field].as_f64()? / 1e6)))
                .collect();
            if points.iter().any(|(_, mb)| *mb > 0.0) {
                out.push(Series {
                    name: format!("{stem} {what}"),
                    points,
                });
            }
        }
    }
    Ok(out)
}

/// "90%", "99%", "99.9%" ... for the 1/(1-p) axis.
fn percentile_label(inverse: &f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / inverse);
    let digits = inverse.log10().round().max(2.0) as usize - 2;
    format!("{p:.digits$}%")
}

fn draw_latency(out: &Path, series: &[Series]) -> anyhow::Result<()> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let x_max = points.clone().map(|p| p.0).fold(10.0, f64::max) * 1.5;
    let y_min = points
        .clone()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .max(0.001)
        / 1.5;
    let y_max = points.map(|p| p.1).fold(0.01, f64::max) * 1.5;
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency by percentile (open loop, from the intended send time)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0..x_max).log_scale(), (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&percentile_label)
        .draw()?;
    draw_lines(&mut chart, series, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

fn draw_throughput(out: &Path, series: &[Series]) -> anyhow::Result<()> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points.map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput over each sluice-perf step (record values)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the step started")
        .y_desc("MB/s")
        .draw()?;
    draw_lines(&mut chart, series, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// One line per series, each in its own colour, and the legend at `legend_at`.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
    legend_at: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(legend_at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_rows_with_a_finite_inverse_become_points() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    \x20      0.532 0.000000000000          1           1.00\n\
                    \x20      4.037 0.500000000000    1274647           2.00\n\
                    \x20    433.407 1.000000000000    2549000\n\
                    #[Mean    =       25.676, StdDeviation   =       68.145]\n";
        assert_eq!(parse_hgrm(text), vec![(1.0, 0.532), (2.0, 4.037)]);
    }

    #[test]
    fn percentile_labels_show_the_nines() {
        assert_eq!(percentile_label(&10.0), "90%");
        assert_eq!(percentile_label(&100.0), "99%");
        assert_eq!(percentile_label(&1000.0), "99.9%");
        assert_eq!(percentile_label(&1.0), "0%");
    }
}
