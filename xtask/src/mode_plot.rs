//! The execution modes' chart: µs per step against the hidden size for the grid-wide and the
//! cluster-resident mode, from `bench/results/*-modes.csv` (`sprnn-bench --modes
//! auto,grid,cluster --out`), one chart per file: `bench/plots/<file stem>.png`, one panel per
//! cell and batch. Each line is the median of a mode's repetitions; a ring marks the mode the
//! planner chose (the `sprnn` rows of the auto mode, whose note names the kernel), so the chart
//! shows where the planner switches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::plots::{color, de, frame, result_files, Legend, FONT};

/// Panel key: (cell, batch, density).
type Panel = (String, usize, String);
/// A panel's µs per step: per approach, per hidden size, every repetition.
type Series = BTreeMap<String, BTreeMap<usize, Vec<f64>>>;

/// The rows of one file: per panel, per approach, per H, the times of the repetitions; and the
/// provenance line.
struct Rows {
    panels: BTreeMap<Panel, Series>,
    /// Per panel and H, whether the auto mode ran the cluster kernel.
    chose_cluster: BTreeMap<(Panel, usize), bool>,
    meta: String,
}

fn read(path: &Path) -> Result<Rows, String> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = rdr.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| format!("{}: no column {name}", path.display()));
    let (cell, h, b, d, approach, us, gpu, date, commit, note) =
        (col("cell")?, col("H")?, col("B")?, col("density")?, col("approach")?, col("us_per_step")?, col("gpu")?, col("date")?, col("commit")?, col("note")?);
    let mut rows = Rows { panels: BTreeMap::new(), chose_cluster: BTreeMap::new(), meta: String::new() };
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let get = |i: usize| rec.get(i).unwrap_or("").trim().to_string();
        let (Ok(hv), Ok(bv), Ok(uv)) = (get(h).parse::<usize>(), get(b).parse::<usize>(), get(us).parse::<f64>()) else { continue };
        let panel = (get(cell), bv, get(d));
        let a = get(approach);
        if a == "sprnn" {
            rows.chose_cluster.insert((panel.clone(), hv), get(note).contains("sprnn_cluster_"));
        }
        if a == "sprnn" || a == "sprnn_grid" || a == "sprnn_cluster" {
            rows.panels.entry(panel).or_default().entry(a).or_default().entry(hv).or_default().push(uv);
        }
        rows.meta = format!("{} · driver {} · {} · commit {}", get(gpu), get(col("driver")?), get(date), get(commit));
    }
    Ok(rows)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

/// Draws the chart of every `*-modes.csv` file in `root/bench/results` into `out`; returns the
/// files written.
pub fn plot_modes(root: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let files = result_files(root, "-modes.csv")?;
    let mut written = Vec::new();
    for f in files {
        let rows = read(&f)?;
        if rows.panels.is_empty() {
            continue;
        }
        let stem = f.file_stem().unwrap_or_default().to_string_lossy().to_string();
        let path = out.join(format!("{stem}.png"));
        draw(&path, &rows, &f.strip_prefix(root).unwrap_or(&f).display().to_string())?;
        written.push(path);
    }
    Ok(written)
}

fn draw(path: &Path, rows: &Rows, source: &str) -> Result<(), String> {
    let modes = [("sprnn_grid", "grid-wide (exchange through L2)"), ("sprnn_cluster", "one cluster (exchange in shared memory)")];
    let mut legend: Vec<Legend> = modes.iter().enumerate().map(|(i, (_, name))| Legend::Line(name.to_string(), color(i))).collect();
    legend.push(Legend::Marker("the planner's choice (auto mode)".into(), true));
    legend.push(Legend::Text("no cluster point: the layer does not fit 16 SMs".into()));
    let panels: Vec<(&Panel, &Series)> = rows.panels.iter().collect();
    let cols = 2usize;
    let lines = panels.len().div_ceil(cols);
    let root = BitMapBackend::new(path, (1500, 120 + 420 * lines as u32)).into_drawing_area();
    let caption = vec![format!("{} · T = 256, median of the repetitions in the file", rows.meta), format!("rows from {source}")];
    let area = frame(&root, "Grid-wide or cluster-resident: µs per step against the hidden size", &caption, &legend, 420)?;
    let cells = area.split_evenly((lines, cols));
    for (cell_area, (panel, series)) in cells.iter().zip(&panels) {
        let hs: Vec<usize> = series.values().flat_map(|m| m.keys().copied()).collect();
        let (hmin, hmax) = (*hs.iter().min().unwrap_or(&0) as f64, *hs.iter().max().unwrap_or(&1) as f64);
        let ymax = series.values().flat_map(|m| m.values().map(|v| median(v))).fold(0.0, f64::max) * 1.15;
        let pad = (hmax - hmin).max(1.0) * 0.05;
        let mut chart = ChartBuilder::on(cell_area)
            .caption(format!("{} B = {} d = {}", panel.0, panel.1, panel.2), (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((hmin - pad)..(hmax + pad), 0.0f64..ymax)
            .map_err(de)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc("hidden size H").y_desc("µs per step");
        mesh.label_style((FONT, 14)).axis_desc_style((FONT, 16)).draw().map_err(de)?;
        for (i, (approach, _)) in modes.iter().enumerate() {
            let Some(by_h) = series.get(*approach) else { continue };
            let pts: Vec<(f64, f64)> = by_h.iter().map(|(&h, v)| (h as f64, median(v))).collect();
            let c = color(i);
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3))).map_err(de)?;
            chart.draw_series(pts.into_iter().map(|(x, y)| Circle::new((x, y), 5, c.filled()))).map_err(de)?;
            // The planner's choice: a ring around this mode's point where the auto mode ran it.
            let cluster = *approach == "sprnn_cluster";
            let rings: Vec<(f64, f64)> = by_h
                .iter()
                .filter(|(h, _)| rows.chose_cluster.get(&((*panel).clone(), **h)) == Some(&cluster))
                .map(|(&h, v)| (h as f64, median(v)))
                .collect();
            chart.draw_series(rings.into_iter().map(|(x, y)| Circle::new((x, y), 11, BLACK.stroke_width(2)))).map_err(de)?;
        }
    }
    root.present().map_err(de)
}
