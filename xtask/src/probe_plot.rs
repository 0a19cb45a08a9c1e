//! The exchange probe's chart: µs per step against the serial polls each thread makes, from
//! `bench/results/*-exchange-probe.csv` (`sprnn-probe --out`), one chart per file:
//! `bench/plots/<file stem>-polls.png`. Series: the `polls` sweep for each word format, and the
//! straight line `1.0 + 0.25·(k − 1)` µs of DESIGN.md §7's model for comparison.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::plots::{color, de, frame, result_files, Legend, FONT};

/// One point of the `polls` sweep.
struct Point {
    format: String,
    k: f64,
    us: f64,
}

fn read(path: &Path) -> Result<(Vec<Point>, String), String> {
    let mut rdr = csv::ReaderBuilder::new().from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = rdr.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| format!("{}: no column {name}", path.display()));
    let (sweep, exchange, format, k, us, gpu, date, commit) =
        (col("sweep")?, col("exchange")?, col("format")?, col("k")?, col("us_per_step")?, col("gpu")?, col("date")?, col("commit")?);
    let mut points = Vec::new();
    let mut meta = String::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let get = |i: usize| rec.get(i).unwrap_or("").trim().to_string();
        if get(sweep) != "polls" || get(exchange) != "global" {
            continue;
        }
        let (Ok(kv), Ok(uv)) = (get(k).parse::<f64>(), get(us).parse::<f64>()) else { continue };
        meta = format!("{} · {} · commit {}", get(gpu), get(date), get(commit));
        points.push(Point { format: get(format), k: kv, us: uv });
    }
    Ok((points, meta))
}

/// Draws the chart of every exchange-probe file in `root/bench/results` into `out`; returns the
/// files written.
pub fn plot_probes(root: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let files = result_files(root, "-exchange-probe.csv")?;
    let mut written = Vec::new();
    for f in files {
        let (points, meta) = read(&f)?;
        if points.is_empty() {
            continue;
        }
        let stem = f.file_stem().unwrap_or_default().to_string_lossy().to_string();
        let path = out.join(format!("{stem}-polls.png"));
        draw(&path, &points, &meta, &f.strip_prefix(root).unwrap_or(&f).display().to_string())?;
        println!("wrote {}", path.strip_prefix(root).unwrap_or(&path).display());
        written.push(path);
    }
    Ok(written)
}

fn draw(path: &Path, points: &[Point], meta: &str, source: &str) -> Result<(), String> {
    let mut formats: Vec<String> = points.iter().map(|p| p.format.clone()).collect();
    formats.sort();
    formats.dedup();
    let name = |f: &str| match f {
        "w32" => "32-bit words (fp16 + 16-bit tag)".to_string(),
        "w64" => "64-bit words (3 × fp16 + 16-bit tag)".to_string(),
        other => other.to_string(),
    };
    let mut legend: Vec<Legend> = vec![Legend::Text("serial polls of 16 bytes per thread:".into())];
    legend.extend(formats.iter().enumerate().map(|(i, f)| Legend::Line(name(f), color(i))));
    legend.push(Legend::Guide("1.0 + 0.25·(k − 1) µs (DESIGN.md §7)".into()));
    let root = BitMapBackend::new(path, (1200, 700)).into_drawing_area();
    let caption = vec![
        format!("{meta} · 128 CTAs × 576 threads, 4000 steps per launch, median of 9 launches"),
        format!("rows from {source}"),
    ];
    let charts = frame(&root, "The exchange alone: µs per step against serial polls per thread", &caption, &legend, 420)?;
    let kmax = points.iter().map(|p| p.k).fold(1.0, f64::max) + 0.5;
    let ymax = points.iter().map(|p| p.us).fold(0.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&charts)
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..kmax, 0.0f64..ymax)
        .map_err(de)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc("serial 16-byte polls per thread (k)").y_desc("µs per step");
    mesh.label_style((FONT, 16)).axis_desc_style((FONT, 18)).draw().map_err(de)?;
    let model: Vec<(f64, f64)> = (0..=60).map(|i| 1.0 + (kmax - 1.5) * i as f64 / 60.0).map(|k| (k, 1.0 + 0.25 * (k - 1.0))).collect();
    chart.draw_series(LineSeries::new(model, BLACK.mix(0.45).stroke_width(2))).map_err(de)?;
    for (i, f) in formats.iter().enumerate() {
        let mut pts: Vec<(f64, f64)> = points.iter().filter(|p| &p.format == f).map(|p| (p.k, p.us)).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = color(i);
        chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3))).map_err(de)?;
        chart.draw_series(pts.into_iter().map(|(x, y)| Circle::new((x, y), 5, c.filled()))).map_err(de)?;
    }
    root.present().map_err(de)
}
