//! `cargo xtask plots [--out DIR] [CSV...]`: PNG charts of the benchmark CSVs.
//!
//! Input: CSV files with the columns `cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,
//! date,commit,note` (written by `sprnn-bench` and `bench/peers/peers.py`); by default every
//! `bench/results/*.csv` except `*-correctness.csv`. Output (default `bench/plots/`), for each GPU
//! named in the rows (`GPU` below is its short name, e.g. `h200`):
//!
//! - `GPU-speedup-H<H>.png`: for each H where a peer was measured, sprnn's speedup over the best
//!   peer against density, one line per (cell, B). Each point is the newest measurement of its
//!   configuration (the sprnn row of the latest commit in file order; the caption lists the
//!   commits drawn). Best peer: the smallest
//!   `us_per_step` over every peer approach (`cudnn`, `cublas_graph`, `cusparse_csr`,
//!   `cusparse_bsr`, `semi_structured`, `flashrnn`) and every dtype with the same GPU, cell, H, B
//!   and T; sparse peers must have the same density, rows at density 1.0 (dense peers) count
//!   for every density; rows whose note says `CHECK FAILED` are ignored. A (cell, H, B, T) with
//!   no peer row is left out. Hollow markers: no sparse peer was measured at that density, so
//!   the best peer is a dense one.
//! - `GPU-speedup-<cell>.png`: the same speedups, one chart per cell (like the paper's figures):
//!   one line per (H, B) against density.
//! - `GPU-floor-H<H>.png`: sprnn's time as a multiple of its exchange floor (the `floor` row of
//!   the same run: same configuration and commit; newest such pair) against density, one panel
//!   per cell, one line per B.
//!
//! Where the rows hold several sequence lengths T, each of these three kinds of chart is drawn
//! once per T, with `-T<T>` before `.png`.
//! - `<stem>.png` for every `bench/results/<stem>` ending in `-modes.csv`: the grid-wide and the
//!   cluster-resident mode against the hidden size, with the planner's choice (`mode_plot`).
//! - `GPU-capacity.png`: for each cell, H and B, the largest density at which sprnn ran (a row
//!   with a number) as nonzeros against the dense-equivalent parameter count G·H·H, with the
//!   smallest larger density that was tried and did not run; one panel per B.
//! - `GPU-capacity-search.png`, from the rows of `sprnn-bench --capacity` and `peers.py
//!   --flashrnn-capacity`: for each cell (one panel each), the largest dense-equivalent parameter
//!   count `G·H²` sprnn ran against density (`sprnn_capacity`, one line per B and commit (the
//!   newest search of each point counts), each
//!   point labelled with H and µs per step), with horizontal lines at the largest dense
//!   persistent layers (sprnn at density 1.0, `dense_persistent`; FlashRNN's fused kernel,
//!   `flashrnn_capacity`), labelled likewise, and at 5× the larger of them (the target).
//!
//! Every chart names the GPU, driver(s), date(s), commit(s) and source files of the rows it uses.
//! When a configuration was measured more than once at the same commit, the last row counts.
//! Text is drawn with a TrueType font read from disk at run time (no system library is linked):
//! `SPRNN_PLOT_FONT`, else DejaVu Sans / Liberation Sans in the usual Linux places, else what
//! `fc-match sans-serif` names (Debian: `apt-get install fonts-dejavu-core`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::results::{gates, read_inputs, Row};
use crate::select::{capacities, capacity_search, floor_series, speedup_series, speedup_series_cell, Capacity, CapacityPanel, Provenance, Series};
use crate::workspace_root;

pub(crate) const FONT: &str = "sans-serif";
/// Sixteen distinguishable colours (a chart has at most 4 H × 4 B lines).
const PALETTE: [(u8, u8, u8); 16] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 0, 0),
    (128, 0, 0),
    (0, 0, 139),
    (154, 205, 50),
    (255, 215, 0),
    (0, 128, 128),
];


/// `NVIDIA H200` → `h200`.
fn gpu_slug(gpu: &str) -> String {
    let lower = gpu.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty() && *w != "nvidia").collect();
    if words.is_empty() { "gpu".into() } else { words.join("-") }
}

/// Registers a TrueType font as "sans-serif" (see the module docs for where it is looked for).
pub(crate) fn register_font() -> Result<String, String> {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("SPRNN_PLOT_FONT") {
        candidates.push(p);
    }
    for p in [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
        "/Library/Fonts/Arial.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
    ] {
        candidates.push(p.into());
    }
    if let Ok(out) = std::process::Command::new("fc-match").args(["-f", "%{file}", "sans-serif"]).output() {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            candidates.push(p);
        }
    }
    for p in candidates {
        let Ok(bytes) = std::fs::read(&p) else { continue };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
            return Ok(p);
        }
    }
    Err("no TrueType font found for the chart text: set SPRNN_PLOT_FONT=/path/to/font.ttf or install one \
         (Debian/Ubuntu: apt-get install fonts-dejavu-core)"
        .into())
}

// ---------------------------------------------------------------- drawing

pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

pub(crate) fn de<E: std::fmt::Display>(e: E) -> String {
    format!("drawing: {e}")
}

pub(crate) fn color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Short decimal for axis labels: 0.01, 0.1, 0.3, 2, 15.
fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let digits = (2 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// The files of `root/bench/results` whose names end in `suffix`, sorted.
pub(crate) fn result_files(root: &Path, suffix: &str) -> Result<Vec<PathBuf>, String> {
    let dir = root.join("bench/results");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(suffix)))
        .collect();
    files.sort();
    Ok(files)
}

/// An entry of the legend strip.
pub(crate) enum Legend {
    Line(String, RGBColor),
    Marker(String, bool),
    Guide(String),
    Text(String),
}

/// Title on top, provenance at the bottom, legend strip on the right; returns the chart area.
pub(crate) fn frame<'a>(root: &Area<'a>, title: &str, caption: &[String], legend: &[Legend], legend_w: u32) -> Result<Area<'a>, String> {
    root.fill(&WHITE).map_err(de)?;
    let (w, h) = root.dim_in_pixel();
    let body = root.margin(8, 0, 0, 0).titled(title, (FONT, 24)).map_err(de)?;
    let cap_h = 14 + 22 * caption.len() as u32;
    let (body, bottom) = body.split_vertically(body.dim_in_pixel().1 - cap_h);
    for (i, line) in caption.iter().enumerate() {
        bottom
            .draw_text(line, &TextStyle::from((FONT, 16).into_font()).color(&BLACK.mix(0.8)), (20, 6 + 22 * i as i32))
            .map_err(de)?;
    }
    let _ = h;
    let (charts, side) = body.split_horizontally(w - legend_w);
    let style = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, e) in legend.iter().enumerate() {
        let y = 50 + 26 * i as i32;
        let (text, x) = match e {
            Legend::Line(text, c) => {
                side.draw(&PathElement::new(vec![(8, y), (44, y)], c.stroke_width(3))).map_err(de)?;
                side.draw(&Circle::new((26, y), 5, c.filled())).map_err(de)?;
                (text, 52)
            }
            Legend::Marker(text, hollow) => {
                let st = if *hollow { BLACK.stroke_width(2) } else { BLACK.filled() };
                side.draw(&Circle::new((26, y), 5, st)).map_err(de)?;
                (text, 52)
            }
            Legend::Guide(text) => {
                side.draw(&PathElement::new(vec![(8, y), (44, y)], BLACK.mix(0.45).stroke_width(2))).map_err(de)?;
                (text, 52)
            }
            Legend::Text(text) => (text, 8),
        };
        side.draw_text(text, &style, (x, y)).map_err(de)?;
    }
    Ok(charts)
}

/// Tick values for a log axis over `lo..hi`: labelled {1, 2, 5} × 10^k ({1, 2, 3, 5} on short
/// ranges), grid lines at 1..9 × 10^k.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let decades = (hi / lo).log10();
    let marks: &[f64] = if decades < 2.5 { &[1.0, 2.0, 3.0, 5.0] } else if decades < 5.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let (mut bold, mut light) = (Vec::new(), Vec::new());
    for k in (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32) {
        let p = 10f64.powi(k);
        for m in 1..=9 {
            let v = m as f64 * p;
            if v >= lo && v <= hi {
                if marks.contains(&(m as f64)) {
                    bold.push(v);
                } else {
                    light.push(v);
                }
            }
        }
    }
    (bold, light)
}

fn x_range(series: &[&Series]) -> (f64, f64) {
    let xs = series.iter().flat_map(|s| s.pts.iter().map(|p| p.x));
    let (lo, hi) = xs.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
    (lo / 1.5, hi * 1.5)
}

/// The grid, axis descriptions and labels of a chart with density (log scale) along x.
fn density_mesh<'a, X, Y>(chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>, y_desc: &str) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("density (log scale)")
        .y_desc(y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.15))
        .draw()
        .map_err(de)
}

/// One panel of lines against density (log x) over the ranges `(x, y)`; `guide` draws a
/// horizontal reference line.
fn density_panel(
    area: &Area,
    title: &str,
    y_desc: &str,
    series: &[Series],
    colors: &BTreeMap<String, RGBColor>,
    (x, y): ((f64, f64), (f64, f64)),
    guide: Option<f64>,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x.0..x.1).log_scale().with_key_points(log_ticks(x.0, x.1).0).with_light_points(log_ticks(x.0, x.1).1),
            y.0..y.1,
        )
        .map_err(de)?;
    density_mesh(&mut chart, y_desc)?;
    if let Some(g) = guide {
        chart.draw_series(LineSeries::new(vec![(x.0, g), (x.1, g)], BLACK.mix(0.45).stroke_width(2))).map_err(de)?;
    }
    for s in series {
        let c = colors[&s.label];
        chart.draw_series(LineSeries::new(s.pts.iter().map(|p| (p.x, p.y)), c.stroke_width(2))).map_err(de)?;
        chart
            .draw_series(s.pts.iter().map(|p| Circle::new((p.x, p.y), 6, if p.hollow { c.stroke_width(2) } else { c.filled() })))
            .map_err(de)?;
    }
    Ok(())
}

fn y_range(series: &[&Series], floor_at: f64) -> (f64, f64) {
    let ys: Vec<f64> = series.iter().flat_map(|s| s.pts.iter().map(|p| p.y)).collect();
    let hi = ys.iter().cloned().fold(floor_at, f64::max);
    let lo = ys.iter().cloned().fold(floor_at, f64::min);
    (if lo >= 0.0 && lo < hi * 0.3 { 0.0 } else { lo - (hi - lo) * 0.08 }, hi + (hi - lo).max(0.1) * 0.1)
}

/// Colours in legend order; returns the labels in that order too.
fn assign_colors<'a>(series: impl Iterator<Item = &'a Series>) -> (BTreeMap<String, RGBColor>, Vec<String>) {
    let mut v: Vec<&Series> = series.collect();
    v.sort_by(|a, b| a.sort.cmp(&b.sort));
    let mut order: Vec<String> = Vec::new();
    for s in v {
        if !order.contains(&s.label) {
            order.push(s.label.clone());
        }
    }
    (order.iter().enumerate().map(|(i, l)| (l.clone(), color(i))).collect(), order)
}

fn plot_speedup(path: &Path, title: &str, heading: &str, series: &[Series], prov: &Provenance) -> Result<(), String> {
    let (colors, order) = assign_colors(series.iter());
    let mut legend: Vec<Legend> = vec![Legend::Text(heading.into())];
    legend.extend(order.iter().map(|l| Legend::Line(l.clone(), colors[l])));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Guide("1× = as fast as best peer".into()));
    legend.push(Legend::Marker("sparse peers measured here too".into(), false));
    legend.push(Legend::Marker("dense peers only at this density".into(), true));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Text("best peer among (any dtype):".into()));
    let peers: Vec<String> = prov.peers_seen.iter().cloned().collect();
    legend.extend(peers.chunks(3).map(|c| Legend::Text(format!("  {}", c.join(", ")))));
    let root = BitMapBackend::new(path, (1300, 760)).into_drawing_area();
    let charts = frame(&root, title, &prov.lines(), &legend, 360)?;
    let refs: Vec<&Series> = series.iter().collect();
    density_panel(
        &charts,
        "speedup = best peer µs/step ÷ sprnn µs/step",
        "speedup over best peer (×)",
        series,
        &colors,
        (x_range(&refs), y_range(&refs, 1.0)),
        Some(1.0),
    )?;
    root.present().map_err(de)
}

fn plot_floor(path: &Path, gpu: &str, h: usize, ttitle: &str, panels: &[(String, Vec<Series>)], prov: &Provenance) -> Result<(), String> {
    let (colors, order) = assign_colors(panels.iter().flat_map(|(_, s)| s.iter()));
    let mut legend: Vec<Legend> = vec![Legend::Text("sprnn (B):".into())];
    legend.extend(order.iter().map(|l| Legend::Line(l.clone(), colors[l])));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Guide("1× = the exchange floor".into()));
    let n = panels.len() as u32;
    let root = BitMapBackend::new(path, (80 + 560 * n + 260, 720)).into_drawing_area();
    let title = format!("sprnn time per step as a multiple of its exchange floor (same launch, no product, no cell), H = {h}{ttitle} ({gpu})");
    let charts = frame(&root, &title, &prov.lines(), &legend, 260)?;
    let all: Vec<&Series> = panels.iter().flat_map(|(_, s)| s.iter()).collect();
    let (x, y) = (x_range(&all), y_range(&all, 1.0));
    for ((cell, series), area) in panels.iter().zip(charts.split_evenly((1, panels.len()))) {
        density_panel(&area, cell, "sprnn µs/step ÷ floor µs/step (×)", series, &colors, (x, y), Some(1.0))?;
    }
    root.present().map_err(de)
}

/// The capacity chart's legend: one line per cell, the two markers, how to read the labels.
fn capacity_legend(cells: &[String], colors: &BTreeMap<String, RGBColor>) -> Vec<Legend> {
    let mut legend: Vec<Legend> = vec![Legend::Text("cell (G gate blocks):".into())];
    legend.extend(cells.iter().map(|c| Legend::Line(format!("{c} (G = {})", gates(c)), colors[c])));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Marker("largest density that ran".into(), false));
    legend.push(Legend::Marker("next density tried: did not run".into(), true));
    legend.push(Legend::Text(String::new()));
    let notes = [
        "Label: density that ran, of the",
        "dense-equivalent G·H·H parameters.",
        "Only the densities in the CSV were",
        "tried: the limit lies between the",
        "filled and the hollow marker (no",
        "hollow marker: every density ran).",
    ];
    legend.extend(notes.map(|n| Legend::Text(n.into())));
    legend
}

fn plot_capacity(path: &Path, gpu: &str, caps: &[Capacity], prov: &Provenance) -> Result<(), String> {
    let bs: BTreeSet<usize> = caps.iter().map(|c| c.b).collect();
    let hs: Vec<usize> = caps.iter().map(|c| c.h).collect::<BTreeSet<_>>().into_iter().collect();
    let cells: Vec<String> = {
        let mut v: Vec<String> = caps.iter().map(|c| c.cell.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        v.sort_by_key(|c| (gates(c), c.clone()));
        v
    };
    let colors: BTreeMap<String, RGBColor> = cells.iter().enumerate().map(|(i, c)| (c.clone(), color(i))).collect();
    let legend = capacity_legend(&cells, &colors);
    let params = |c: &Capacity| (gates(&c.cell) * c.h * c.h) as f64 / 1e6;
    let ys: Vec<f64> = caps
        .iter()
        .flat_map(|c| [c.ran, c.failed_above].into_iter().flatten().map(move |d| d * params(c)))
        .collect();
    let y = (ys.iter().cloned().fold(f64::INFINITY, f64::min) / 1.6, ys.iter().cloned().fold(0.0, f64::max) * 1.6);
    // Cells side by side within each H group.
    let xpos = |c: &Capacity| {
        let i = hs.iter().position(|&h| h == c.h).unwrap() as f64;
        let k = cells.iter().position(|x| x == &c.cell).unwrap() as f64;
        i + (k - (cells.len() as f64 - 1.0) / 2.0) * 0.22
    };
    let n = bs.len() as u32;
    let root = BitMapBackend::new(path, (80 + 560 * n + 330, 780)).into_drawing_area();
    let title = format!("Capacity: largest density at which sprnn ran, from the sprnn rows in the CSV ({gpu})");
    let charts = frame(&root, &title, &prov.lines(), &legend, 330)?;
    for (b, area) in bs.iter().zip(charts.split_evenly((1, bs.len()))) {
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("B = {b}"), (FONT, 20))
            .margin(12)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(
                -0.5..hs.len() as f64 - 0.5,
                (y.0..y.1).log_scale().with_key_points(log_ticks(y.0, y.1).0).with_light_points(log_ticks(y.0, y.1).1),
            )
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("hidden size H")
            .y_desc("nonzeros = density × G·H·H (millions, log)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_labels(2 * hs.len() + 1)
            .x_label_formatter(&|v| match hs.get(v.round().max(0.0) as usize) {
                Some(h) if (v - v.round()).abs() < 1e-6 => format!("H = {h}"),
                _ => String::new(),
            })
            .y_label_formatter(&|v| fmt_num(*v))
            .light_line_style(BLACK.mix(0.05))
            .bold_line_style(BLACK.mix(0.15))
            .draw()
            .map_err(de)?;
        for c in caps.iter().filter(|c| c.b == *b) {
            let (px, pp, c_color) = (xpos(c), params(c), colors[&c.cell]);
            if let (Some(lo), Some(hi)) = (c.ran, c.failed_above) {
                chart.draw_series(LineSeries::new(vec![(px, lo * pp), (px, hi * pp)], c_color.stroke_width(2))).map_err(de)?;
            }
            if let Some(hi) = c.failed_above {
                chart.draw_series(std::iter::once(Circle::new((px, hi * pp), 6, c_color.stroke_width(2)))).map_err(de)?;
            }
            if let Some(lo) = c.ran {
                chart.draw_series(std::iter::once(Circle::new((px, lo * pp), 6, c_color.filled()))).map_err(de)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{} of {}M", fmt_num(lo), fmt_num(pp)),
                        (px, lo * pp / 1.12),
                        TextStyle::from((FONT, 13).into_font()).color(&c_color).pos(Pos::new(HPos::Center, VPos::Top)),
                    )))
                    .map_err(de)?;
            }
        }
    }
    root.present().map_err(de)
}

fn plot_capacity_search(path: &Path, gpu: &str, panels: &BTreeMap<String, CapacityPanel>, prov: &Provenance) -> Result<(), String> {
    let mut cells: Vec<&String> = panels.keys().collect();
    cells.sort_by_key(|c| (gates(c), c.to_string()));
    let params = |cell: &str, h: usize| (gates(cell) * h * h) as f64 / 1e6;
    let mut keys: Vec<(usize, usize, String)> = panels.values().flat_map(|p| p.sprnn.keys().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
    keys.sort();
    let colors: BTreeMap<(usize, usize, String), RGBColor> = keys.iter().enumerate().map(|(i, k)| (k.clone(), color(i))).collect();
    let mut legend: Vec<Legend> = vec![Legend::Text("sprnn at its capacity (B, commit):".into())];
    legend.extend(keys.iter().map(|k| Legend::Line(format!("B={} @{}", k.0, if k.2.is_empty() { "?" } else { &k.2 }), colors[k])));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Guide("largest dense persistent layer".into()));
    legend.push(Legend::Text("(sprnn at d = 1, FlashRNN fused),".into()));
    legend.push(Legend::Text("dotted: 5× the larger (target)".into()));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Text("Labels: H and µs per step.".into()));
    legend.push(Legend::Text("Hollow: capacity found, not timed.".into()));
    let mut ys: Vec<f64> = Vec::new();
    for (cell, p) in panels {
        ys.extend(p.sprnn.values().flatten().map(|c| params(cell, c.h)));
        ys.extend(p.dense.iter().map(|d| params(cell, d.1) * 5.0));
        ys.extend(p.dense.iter().map(|d| params(cell, d.1)));
    }
    if ys.is_empty() {
        return Ok(());
    }
    let y = (ys.iter().cloned().fold(f64::INFINITY, f64::min) / 2.0, ys.iter().cloned().fold(0.0, f64::max) * 3.0);
    let xs: Vec<f64> = panels.values().flat_map(|p| p.sprnn.values().flatten().map(|c| c.density)).collect();
    let x = (xs.iter().cloned().fold(f64::INFINITY, f64::min) / 1.6, xs.iter().cloned().fold(0.0, f64::max) * 1.6);
    let n = cells.len() as u32;
    let root = BitMapBackend::new(path, (80 + 600 * n + 330, 800)).into_drawing_area();
    let charts = frame(&root, &format!("Capacity: the largest layer each approach runs persistently, by density ({gpu})"), &prov.lines(), &legend, 330)?;
    for (cell, area) in cells.iter().zip(charts.split_evenly((1, cells.len()))) {
        let panel = &panels[*cell];
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("{cell} (G = {})", gates(cell)), (FONT, 20))
            .margin(12)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (x.0..x.1).log_scale().with_key_points(log_ticks(x.0, x.1).0).with_light_points(log_ticks(x.0, x.1).1),
                (y.0..y.1).log_scale().with_key_points(log_ticks(y.0, y.1).0).with_light_points(log_ticks(y.0, y.1).1),
            )
            .map_err(de)?;
        density_mesh(&mut chart, "dense-equivalent parameters G·H² (millions, log)")?;
        let grey = BLACK.mix(0.6);
        for (i, (label, h, us)) in panel.dense.iter().enumerate() {
            let v = params(cell, *h);
            chart.draw_series(LineSeries::new(vec![(x.0, v), (x.1, v)], grey.stroke_width(2))).map_err(de)?;
            let text = format!("{label}: H={h}, {} µs", us.map_or("?".into(), fmt_num));
            chart
                .draw_series(std::iter::once(Text::new(text, (x.0 * 1.05, v * 1.04 * (1.0 + 0.12 * i as f64)), TextStyle::from((FONT, 13).into_font()).color(&RGBColor(60, 60, 60)).pos(Pos::new(HPos::Left, VPos::Bottom)))))
                .map_err(de)?;
        }
        if let Some(top) = panel.dense.iter().map(|d| params(cell, d.1)).reduce(f64::max) {
            let t = 5.0 * top;
            let dots: Vec<(f64, f64)> = (0..=40).map(|i| (x.0 * (x.1 / x.0).powf(i as f64 / 40.0), t)).collect();
            chart.draw_series(dots.into_iter().map(|p| Circle::new(p, 1, grey.filled()))).map_err(de)?;
        }
        for (k, pts) in &panel.sprnn {
            let c = colors[k];
            let mut pts = pts.clone();
            pts.sort_by(|a, b| a.density.total_cmp(&b.density));
            chart.draw_series(LineSeries::new(pts.iter().map(|p| (p.density, params(cell, p.h))), c.stroke_width(2))).map_err(de)?;
            for p in &pts {
                let at = (p.density, params(cell, p.h));
                let st = if p.us.is_some() { c.filled() } else { c.stroke_width(2) };
                chart.draw_series(std::iter::once(Circle::new(at, 5, st))).map_err(de)?;
                let text = format!("H={} {}", p.h, p.us.map_or(String::new(), |u| format!("{} µs", fmt_num(u))));
                chart.draw_series(std::iter::once(Text::new(text, (at.0, at.1 * 1.15), TextStyle::from((FONT, 13).into_font()).color(&c).pos(Pos::new(HPos::Center, VPos::Bottom))))).map_err(de)?;
            }
        }
    }
    root.present().map_err(de)
}

// ---------------------------------------------------------------- which charts

/// Where the charts of one GPU and one T go: the rows, the GPU and its short name, the output
/// folder, and the file-name suffix and title words that name T where there are several.
struct Charts<'a> {
    rows: &'a [Row],
    gpu: &'a str,
    slug: String,
    out: &'a Path,
    tsuf: String,
    ttitle: String,
}

impl Charts<'_> {
    /// The speedup and floor charts of each H, and the speedup chart of each cell, at `t`.
    fn speed_charts(&self, t: usize) -> Result<Vec<PathBuf>, String> {
        let (rows, gpu, slug, tsuf, ttitle) = (self.rows, self.gpu, &self.slug, &self.tsuf, &self.ttitle);
        let mut written = Vec::new();
        let hs: BTreeSet<usize> = rows.iter().filter(|r| r.gpu == gpu && r.approach == "sprnn" && r.us.is_some() && r.t == t).map(|r| r.h).collect();
        for &h in &hs {
            let (series, prov) = speedup_series(rows, gpu, h, t);
            if !series.is_empty() {
                let p = self.out.join(format!("{slug}-speedup-H{h}{tsuf}.png"));
                plot_speedup(&p, &format!("sprnn speedup over the best peer measured, H = {h}{ttitle} ({gpu})"), "sprnn (cell, B):", &series, &prov)?;
                written.push(p);
            }
            written.extend(self.floor_chart(h, t)?);
        }
        let cells: BTreeSet<String> = rows.iter().filter(|r| r.gpu == gpu && r.approach == "sprnn" && r.t == t).map(|r| r.cell.clone()).collect();
        for cell in &cells {
            let (series, prov) = speedup_series_cell(rows, gpu, cell, t);
            if !series.is_empty() {
                let p = self.out.join(format!("{slug}-speedup-{cell}{tsuf}.png"));
                plot_speedup(&p, &format!("sprnn speedup over the best peer measured, {cell}{ttitle} ({gpu})"), "sprnn (H, B):", &series, &prov)?;
                written.push(p);
            }
        }
        Ok(written)
    }

    /// The floor chart of `h` at `t`, one panel per cell, where there is a floor row.
    fn floor_chart(&self, h: usize, t: usize) -> Result<Option<PathBuf>, String> {
        let (rows, gpu) = (self.rows, self.gpu);
        let mut prov = Provenance::default();
        let mut cells: Vec<String> = rows.iter().filter(|r| r.gpu == gpu && r.h == h).map(|r| r.cell.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        cells.sort_by_key(|c| (gates(c), c.clone()));
        let panels: Vec<(String, Vec<Series>)> = cells
            .into_iter()
            .map(|c| {
                let s = floor_series(rows, gpu, h, t, &c, &mut prov);
                (c, s)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if panels.is_empty() {
            return Ok(None);
        }
        let p = self.out.join(format!("{}-floor-H{h}{}.png", self.slug, self.tsuf));
        plot_floor(&p, gpu, h, &self.ttitle, &panels, &prov)?;
        Ok(Some(p))
    }
}

/// The capacity-search and capacity charts of `gpu`, where it has rows for them.
fn capacity_charts(rows: &[Row], gpu: &str, out: &Path) -> Result<Vec<PathBuf>, String> {
    let slug = gpu_slug(gpu);
    let mut written = Vec::new();
    let mut prov = Provenance::default();
    let search = capacity_search(rows, gpu, &mut prov);
    if search.values().any(|p| !p.sprnn.is_empty()) {
        let p = out.join(format!("{slug}-capacity-search.png"));
        plot_capacity_search(&p, gpu, &search, &prov)?;
        written.push(p);
    }
    let mut prov = Provenance::default();
    let caps = capacities(rows, gpu, &mut prov);
    if caps.iter().any(|c| c.ran.is_some()) {
        let p = out.join(format!("{slug}-capacity.png"));
        plot_capacity(&p, gpu, &caps, &prov)?;
        written.push(p);
    }
    Ok(written)
}

// ---------------------------------------------------------------- entry point

/// Entry point of `cargo xtask plots`.
pub fn plots(args: &[&str]) -> Result<(), String> {
    let root = workspace_root();
    let mut out = root.join("bench/plots");
    let mut inputs: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a folder")?),
            "-h" | "--help" => {
                println!("usage: cargo xtask plots [--out DIR] [CSV...]   (default: bench/results/*.csv except *-correctness.csv, into bench/plots/)");
                return Ok(());
            }
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    let (rows, files) = read_inputs(&root, inputs, "plot")?;
    let font = register_font()?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = crate::probe_plot::plot_probes(&root, &out)?;
    written.extend(crate::mode_plot::plot_modes(&root, &out)?);
    let gpus: BTreeSet<String> = rows.iter().filter(|r| r.approach == "sprnn" || r.approach == "sprnn_capacity").map(|r| r.gpu.clone()).collect();
    for gpu in &gpus {
        let ts: BTreeSet<usize> = rows.iter().filter(|r| &r.gpu == gpu && r.approach == "sprnn" && r.us.is_some()).map(|r| r.t).collect();
        for &t in &ts {
            // One set of charts per T; a suffix only where there are several.
            let (tsuf, ttitle) = if ts.len() > 1 { (format!("-T{t}"), format!(", T = {t}")) } else { (String::new(), String::new()) };
            let at = Charts { rows: &rows, gpu, slug: gpu_slug(gpu), out: &out, tsuf, ttitle };
            written.extend(at.speed_charts(t)?);
        }
        written.extend(capacity_charts(&rows, gpu, &out)?);
    }
    println!("{} rows from {} file(s); text font {font}", rows.len(), files.len());
    for p in &written {
        println!("wrote {}", p.strip_prefix(&root).unwrap_or(p).display());
    }
    if written.is_empty() {
        return Err("nothing to plot: no sprnn row with a number".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug() {
        assert_eq!(gpu_slug("NVIDIA H200"), "h200");
        assert_eq!(gpu_slug("NVIDIA GeForce RTX 4090"), "geforce-rtx-4090");
        assert_eq!(fmt_num(0.01), "0.01");
        assert_eq!(fmt_num(0.3), "0.3");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(15.26), "15.3");
    }
}
