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

use crate::workspace_root;

/// Peer approaches (everything `peers.py` writes at a configuration of the sweep).
pub(crate) const PEERS: &[&str] = &["cudnn", "cublas_graph", "cusparse_csr", "cusparse_bsr", "semi_structured", "flashrnn"];
/// Peers that use the full matrix: their rows (density 1.0) hold for every density.
pub(crate) const DENSE_PEERS: &[&str] = &["cudnn", "cublas_graph", "flashrnn"];
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

/// One CSV row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    pub(crate) cell: String,
    pub(crate) h: usize,
    pub(crate) b: usize,
    pub(crate) density: f64,
    pub(crate) t: usize,
    pub(crate) dtype: String,
    pub(crate) approach: String,
    pub(crate) us: Option<f64>,
    pub(crate) gpu: String,
    pub(crate) driver: String,
    pub(crate) date: String,
    pub(crate) commit: String,
    pub(crate) note: String,
    /// Source file, as shown in the charts.
    pub(crate) src: String,
}

pub(crate) fn same_density(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

pub(crate) fn gates(cell: &str) -> usize {
    match cell {
        "lstm" => 4,
        "gru" => 3,
        _ => 1,
    }
}

/// `NVIDIA H200` → `h200`.
fn gpu_slug(gpu: &str) -> String {
    let lower = gpu.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty() && *w != "nvidia").collect();
    if words.is_empty() { "gpu".into() } else { words.join("-") }
}

/// Where the rows came from: GPU(s), driver(s), date(s), commits (split by role), files.
#[derive(Default)]
struct Provenance {
    gpus: BTreeSet<String>,
    drivers: BTreeSet<String>,
    dates: BTreeSet<String>,
    commits: BTreeMap<&'static str, BTreeSet<String>>,
    files: BTreeSet<String>,
    /// Peer approaches with a usable row for the configurations plotted.
    peers_seen: BTreeSet<String>,
}

impl Provenance {
    fn add(&mut self, role: &'static str, r: &Row) {
        self.gpus.insert(r.gpu.clone());
        self.drivers.insert(if r.driver.is_empty() { "?".into() } else { r.driver.clone() });
        self.dates.insert(if r.date.is_empty() { "?".into() } else { r.date.clone() });
        self.commits.entry(role).or_default().insert(if r.commit.is_empty() { "?".into() } else { r.commit.clone() });
        self.files.insert(r.src.clone());
    }

    fn lines(&self) -> Vec<String> {
        let j = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let commits: Vec<String> = self.commits.iter().map(|(role, c)| format!("{role} {}", j(c))).collect();
        vec![
            format!("{} · driver {} · measured {} · commits: {}", j(&self.gpus), j(&self.drivers), j(&self.dates), commits.join("; ")),
            format!("rows from {}", j(&self.files)),
        ]
    }
}

/// A point of a line chart; `hollow` draws an unfilled marker.
#[derive(Clone, Debug, PartialEq)]
struct Pt {
    x: f64,
    y: f64,
    hollow: bool,
}

/// One line: its legend label and points sorted by x.
#[derive(Clone, Debug, PartialEq)]
struct Series {
    label: String,
    pts: Vec<Pt>,
    /// Legend order: (gates, cell, B, T, rank of the commit by its first row in the input).
    sort: (usize, String, usize, usize, usize),
}

/// Commits in the order of their first row (the files are appended run after run).
fn commit_rank(rows: &[Row], commit: &str) -> usize {
    rows.iter().position(|r| r.commit == commit).unwrap_or(usize::MAX)
}

/// Last row per (gpu, cell, H, B, density, T, commit) of one approach, with a number.
fn measured<'a>(rows: &'a [Row], approach: &str) -> Vec<&'a Row> {
    let mut last: BTreeMap<(String, String, usize, usize, u64, usize, String), &Row> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.approach == approach && r.us.is_some()) {
        last.insert((r.gpu.clone(), r.cell.clone(), r.h, r.b, r.density.to_bits(), r.t, r.commit.clone()), r);
    }
    let mut v: Vec<&Row> = last.into_values().collect();
    v.sort_by(|a, b| (a.density).total_cmp(&b.density));
    v
}

/// The best peer row for an sprnn row: `(row, whether a sparse peer was measured at its density)`.
fn best_peer<'a>(rows: &'a [Row], s: &Row) -> Option<(&'a Row, bool)> {
    let mut best: Option<&Row> = None;
    let mut sparse_here = false;
    for r in rows {
        if !PEERS.contains(&r.approach.as_str()) || r.note.contains("CHECK FAILED") {
            continue;
        }
        let Some(us) = r.us else { continue };
        if r.gpu != s.gpu || r.cell != s.cell || r.h != s.h || r.b != s.b || r.t != s.t {
            continue;
        }
        let dense = DENSE_PEERS.contains(&r.approach.as_str()) || r.density >= 1.0;
        if !dense && !same_density(r.density, s.density) {
            continue;
        }
        sparse_here |= !dense;
        if best.is_none_or(|b| us < b.us.unwrap()) {
            best = Some(r);
        }
    }
    best.map(|b| (b, sparse_here))
}

/// The newest of `v` per configuration (GPU, cell, H, B, T, density): the row whose commit
/// comes last in the files (they are appended run after run).
fn newest<'a>(rows: &[Row], v: impl IntoIterator<Item = &'a Row>) -> Vec<&'a Row> {
    let mut best: BTreeMap<(String, String, usize, usize, usize, u64), (usize, &Row)> = BTreeMap::new();
    for r in v {
        let rank = commit_rank(rows, &r.commit);
        let e = best.entry((r.gpu.clone(), r.cell.clone(), r.h, r.b, r.t, r.density.to_bits())).or_insert((rank, r));
        if rank >= e.0 {
            *e = (rank, r);
        }
    }
    let mut out: Vec<&Row> = best.into_values().map(|(_, r)| r).collect();
    out.sort_by(|a, b| a.density.total_cmp(&b.density));
    out
}

/// Sort key of a speedup series: (major, cell, B, T, commit rank).
type SeriesKey = (usize, String, usize, usize, usize);

/// Speedup series of one GPU, H and T (label `cell B=..`), and the rows used.
fn speedup_series(rows: &[Row], gpu: &str, h: usize, t: usize) -> (Vec<Series>, Provenance) {
    speedup_series_by(rows, gpu, |r| r.h == h && r.t == t, |s| ((gates(&s.cell), s.cell.clone(), s.b, 0, 0), label(&s.cell, s.b)))
}

/// Speedup series of one GPU, cell and T (label `H=.. B=..`), and the rows used.
fn speedup_series_cell(rows: &[Row], gpu: &str, cell: &str, t: usize) -> (Vec<Series>, Provenance) {
    speedup_series_by(rows, gpu, |r| r.cell == cell && r.t == t, |s| ((s.h, String::new(), s.b, 0, 0), format!("H={} {}", s.h, label("", s.b))))
}

/// sprnn's speedup over the best peer for the sprnn rows of `gpu` that `keep` selects, one
/// series per key (`key_label(row)` gives the series' sort key and label); the newest
/// measurement of each configuration that has a peer.
fn speedup_series_by(
    rows: &[Row],
    gpu: &str,
    keep: impl Fn(&Row) -> bool,
    key_label: impl Fn(&Row) -> (SeriesKey, String),
) -> (Vec<Series>, Provenance) {
    let mut prov = Provenance::default();
    let with_peer = measured(rows, "sprnn").into_iter().filter(|r| r.gpu == gpu && keep(r) && best_peer(rows, r).is_some());
    let sprnn = newest(rows, with_peer);
    let mut by: BTreeMap<SeriesKey, (String, Vec<Pt>)> = BTreeMap::new();
    for s in sprnn {
        let Some((peer, sparse_here)) = best_peer(rows, s) else { continue };
        for r in rows.iter().filter(|r| PEERS.contains(&r.approach.as_str()) && r.us.is_some() && !r.note.contains("CHECK FAILED")) {
            if r.gpu == s.gpu && r.cell == s.cell && r.h == s.h && r.b == s.b && r.t == s.t {
                prov.peers_seen.insert(r.approach.clone());
            }
        }
        prov.add("sprnn", s);
        prov.add("peers", peer);
        let (key, name) = key_label(s);
        by.entry(key).or_insert_with(|| (name, Vec::new())).1.push(Pt {
            x: s.density,
            y: peer.us.unwrap() / s.us.unwrap(),
            hollow: !sparse_here,
        });
    }
    (by.into_iter().map(|(sort, (label, pts))| Series { label, pts, sort }).collect(), prov)
}

/// One point of the capacity-search chart.
#[derive(Clone, Debug, PartialEq)]
struct CapPoint {
    density: f64,
    h: usize,
    us: Option<f64>,
}

/// What the capacity-search chart shows for one cell: sprnn's points per (B, commit) and the
/// dense persistent references (label, H, µs).
#[derive(Clone, Debug, Default, PartialEq)]
struct CapacityPanel {
    sprnn: BTreeMap<(usize, usize, String), Vec<CapPoint>>,
    dense: Vec<(String, usize, Option<f64>)>,
}

/// The capacity-search rows of one GPU, per cell (last row per configuration and commit).
fn capacity_search(rows: &[Row], gpu: &str, prov: &mut Provenance) -> BTreeMap<String, CapacityPanel> {
    let mut out: BTreeMap<String, CapacityPanel> = BTreeMap::new();
    // Last row per (cell, B, T, density): a later search (the files are appended run after
    // run) replaces an earlier one, whatever its commit, so each point is drawn once.
    let mut last: BTreeMap<(String, usize, usize, u64), &Row> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.approach == "sprnn_capacity" && r.gpu == gpu && r.h > 0) {
        last.insert((r.cell.clone(), r.b, r.t, r.density.to_bits()), r);
    }
    for r in last.into_values() {
        prov.add("sprnn", r);
        let key = (r.b, commit_rank(rows, &r.commit), r.commit.clone());
        out.entry(r.cell.clone()).or_default().sprnn.entry(key).or_default().push(CapPoint { density: r.density, h: r.h, us: r.us });
    }
    for (approach, name) in [("dense_persistent", "sprnn dense"), ("flashrnn_capacity", "FlashRNN fused")] {
        // In the order of the runs, so the newest run's reference stands.
        let mut runs: Vec<&Row> = measured(rows, approach).into_iter().filter(|r| r.gpu == gpu).collect();
        runs.sort_by_key(|r| commit_rank(rows, &r.commit));
        for r in runs {
            prov.add(if approach == "dense_persistent" { "sprnn" } else { "peers" }, r);
            let panel = out.entry(r.cell.clone()).or_default();
            let which = format!("{name} B={} @", r.b);
            let label = format!("{which}{}", if r.commit.is_empty() { "?" } else { &r.commit });
            panel.dense.retain(|d| !d.0.starts_with(&which));
            panel.dense.push((label, r.h, r.us));
        }
    }
    out
}

fn label(cell: &str, b: usize) -> String {
    format!("{cell}{}B={b}", if cell.is_empty() { "" } else { " " })
}

/// sprnn ÷ floor series of one GPU, H, T and cell (label `B=..`): the newest sprnn row of each
/// configuration that has a floor row of the same commit.
fn floor_series(rows: &[Row], gpu: &str, h: usize, t: usize, cell: &str, prov: &mut Provenance) -> Vec<Series> {
    let floors = measured(rows, "floor");
    let floor_of = |s: &Row| {
        floors.iter().copied().find(|f| {
            f.gpu == s.gpu && f.cell == s.cell && f.h == s.h && f.b == s.b && f.t == s.t && f.commit == s.commit && same_density(f.density, s.density)
        })
    };
    let paired = measured(rows, "sprnn").into_iter().filter(|r| r.gpu == gpu && r.h == h && r.t == t && r.cell == cell && floor_of(r).is_some());
    let mut by: BTreeMap<(usize, String, usize, usize, usize), (String, Vec<Pt>)> = BTreeMap::new();
    for s in newest(rows, paired) {
        let f = floor_of(s).expect("paired above");
        prov.add("sprnn", s);
        let key = (0, String::new(), s.b, 0, 0);
        let pt = Pt { x: s.density, y: s.us.unwrap() / f.us.unwrap(), hollow: false };
        by.entry(key).or_insert_with(|| (label("", s.b), Vec::new())).1.push(pt);
    }
    by.into_iter()
        .map(|(sort, (label, pts))| Series { label, pts, sort })
        .collect()
}

/// Capacity of one (cell, H, B): largest density that ran, smallest larger density tried that
/// did not run.
#[derive(Clone, Debug, PartialEq)]
struct Capacity {
    cell: String,
    h: usize,
    b: usize,
    ran: Option<f64>,
    failed_above: Option<f64>,
}

fn capacities(rows: &[Row], gpu: &str, prov: &mut Provenance) -> Vec<Capacity> {
    let mut map: BTreeMap<(String, usize, usize), (Option<f64>, Vec<f64>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.approach == "sprnn" && r.gpu == gpu) {
        prov.add("sprnn", r);
        let e = map.entry((r.cell.clone(), r.h, r.b)).or_default();
        match r.us {
            Some(_) => e.0 = Some(e.0.map_or(r.density, |d: f64| d.max(r.density))),
            None => e.1.push(r.density),
        }
    }
    map.into_iter()
        .map(|((cell, h, b), (ran, failed))| {
            let failed_above = failed.into_iter().filter(|&d| ran.is_none_or(|r| d > r)).min_by(f64::total_cmp);
            Capacity { cell, h, b, ran, failed_above }
        })
        .collect()
}

// ---------------------------------------------------------------- input

pub(crate) fn read_csv(path: &Path, shown: &str) -> Result<Vec<Row>, String> {
    let mut rdr = csv::ReaderBuilder::new().from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = rdr.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| format!("{}: no column {name}", path.display()));
    let idx: Vec<usize> = ["cell", "H", "B", "density", "T", "dtype", "approach", "us_per_step", "gpu", "driver", "date", "commit", "note"]
        .iter()
        .map(|c| col(c))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let line = i + 2;
        let f = |k: usize| rec.get(idx[k]).unwrap_or("").trim().to_string();
        let num = |k: usize| -> Result<f64, String> {
            f(k).parse::<f64>().map_err(|_| format!("{}:{line}: bad number {:?} in column {}", path.display(), f(k), &headers[idx[k]]))
        };
        let int = |k: usize| -> Result<usize, String> {
            f(k).parse::<usize>().map_err(|_| format!("{}:{line}: bad integer {:?} in column {}", path.display(), f(k), &headers[idx[k]]))
        };
        rows.push(Row {
            cell: f(0),
            h: int(1)?,
            b: int(2)?,
            density: num(3)?,
            t: int(4)?,
            dtype: f(5),
            approach: f(6),
            us: if f(7).is_empty() { None } else { Some(num(7)?) },
            gpu: f(8),
            driver: f(9),
            date: f(10),
            commit: f(11),
            note: f(12),
            src: shown.to_string(),
        });
    }
    Ok(rows)
}

pub(crate) fn default_inputs(root: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = root.join("bench/results");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            // The exchange probe's rows have columns of their own (`sprnn-probe --out`).
            n.ends_with(".csv") && !n.ends_with("-correctness.csv") && !n.ends_with("-exchange-probe.csv")
        })
        .collect();
    v.sort();
    Ok(v)
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

/// One panel of lines against density (log x); `guide` draws a horizontal reference line.
#[allow(clippy::too_many_arguments)]
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

fn density_panel(
    area: &Area,
    title: &str,
    y_desc: &str,
    series: &[Series],
    colors: &BTreeMap<String, RGBColor>,
    x: (f64, f64),
    y: (f64, f64),
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
        x_range(&refs),
        y_range(&refs, 1.0),
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
    let charts = frame(
        &root,
        &format!("sprnn time per step as a multiple of its exchange floor (same launch, no product, no cell), H = {h}{ttitle} ({gpu})"),
        &prov.lines(),
        &legend,
        260,
    )?;
    let all: Vec<&Series> = panels.iter().flat_map(|(_, s)| s.iter()).collect();
    let (x, y) = (x_range(&all), y_range(&all, 1.0));
    for ((cell, series), area) in panels.iter().zip(charts.split_evenly((1, panels.len()))) {
        density_panel(&area, cell, "sprnn µs/step ÷ floor µs/step (×)", series, &colors, x, y, Some(1.0))?;
    }
    root.present().map_err(de)
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
    let mut legend: Vec<Legend> = vec![Legend::Text("cell (G gate blocks):".into())];
    legend.extend(cells.iter().map(|c| Legend::Line(format!("{c} (G = {})", gates(c)), colors[c])));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Marker("largest density that ran".into(), false));
    legend.push(Legend::Marker("next density tried: did not run".into(), true));
    legend.push(Legend::Text(String::new()));
    legend.push(Legend::Text("Label: density that ran, of the".into()));
    legend.push(Legend::Text("dense-equivalent G·H·H parameters.".into()));
    legend.push(Legend::Text("Only the densities in the CSV were".into()));
    legend.push(Legend::Text("tried: the limit lies between the".into()));
    legend.push(Legend::Text("filled and the hollow marker (no".into()));
    legend.push(Legend::Text("hollow marker: every density ran).".into()));
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
    let charts = frame(
        &root,
        &format!("Capacity: largest density at which sprnn ran, from the sprnn rows in the CSV ({gpu})"),
        &prov.lines(),
        &legend,
        330,
    )?;
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

// ---------------------------------------------------------------- entry point

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
    if inputs.is_empty() {
        inputs = default_inputs(&root)?;
    }
    if inputs.is_empty() {
        return Err("no CSV files to plot".into());
    }
    let mut rows = Vec::new();
    for p in &inputs {
        let abs = std::fs::canonicalize(p).unwrap_or(p.clone());
        let shown = abs.strip_prefix(&root).map(|r| r.display().to_string()).unwrap_or_else(|_| p.display().to_string());
        rows.extend(read_csv(p, &shown)?);
    }
    let font = register_font()?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = crate::probe_plot::plot_probes(&root, &out)?;
    let gpus: BTreeSet<String> = rows.iter().filter(|r| r.approach == "sprnn" || r.approach == "sprnn_capacity").map(|r| r.gpu.clone()).collect();
    for gpu in &gpus {
        let slug = gpu_slug(gpu);
        let ts: BTreeSet<usize> = rows.iter().filter(|r| &r.gpu == gpu && r.approach == "sprnn" && r.us.is_some()).map(|r| r.t).collect();
        for &t in &ts {
        // One set of charts per T; a suffix only where there are several.
        let (tsuf, ttitle) = if ts.len() > 1 { (format!("-T{t}"), format!(", T = {t}")) } else { (String::new(), String::new()) };
        let hs: BTreeSet<usize> = rows.iter().filter(|r| &r.gpu == gpu && r.approach == "sprnn" && r.us.is_some() && r.t == t).map(|r| r.h).collect();
        for &h in &hs {
            let (series, prov) = speedup_series(&rows, gpu, h, t);
            if !series.is_empty() {
                let p = out.join(format!("{slug}-speedup-H{h}{tsuf}.png"));
                plot_speedup(&p, &format!("sprnn speedup over the best peer measured, H = {h}{ttitle} ({gpu})"), "sprnn (cell, B):", &series, &prov)?;
                written.push(p);
            }
            let mut prov = Provenance::default();
            let mut cells: Vec<String> = rows.iter().filter(|r| &r.gpu == gpu && r.h == h).map(|r| r.cell.clone()).collect::<BTreeSet<_>>().into_iter().collect();
            cells.sort_by_key(|c| (gates(c), c.clone()));
            let panels: Vec<(String, Vec<Series>)> = cells
                .into_iter()
                .map(|c| {
                    let s = floor_series(&rows, gpu, h, t, &c, &mut prov);
                    (c, s)
                })
                .filter(|(_, s)| !s.is_empty())
                .collect();
            if !panels.is_empty() {
                let p = out.join(format!("{slug}-floor-H{h}{tsuf}.png"));
                plot_floor(&p, gpu, h, &ttitle, &panels, &prov)?;
                written.push(p);
            }
        }
        let cells: BTreeSet<String> = rows.iter().filter(|r| &r.gpu == gpu && r.approach == "sprnn" && r.t == t).map(|r| r.cell.clone()).collect();
        for cell in &cells {
            let (series, prov) = speedup_series_cell(&rows, gpu, cell, t);
            if !series.is_empty() {
                let p = out.join(format!("{slug}-speedup-{cell}{tsuf}.png"));
                plot_speedup(&p, &format!("sprnn speedup over the best peer measured, {cell}{ttitle} ({gpu})"), "sprnn (H, B):", &series, &prov)?;
                written.push(p);
            }
        }
        }
        let mut prov = Provenance::default();
        let search = capacity_search(&rows, gpu, &mut prov);
        if search.values().any(|p| !p.sprnn.is_empty()) {
            let p = out.join(format!("{slug}-capacity-search.png"));
            plot_capacity_search(&p, gpu, &search, &prov)?;
            written.push(p);
        }
        let mut prov = Provenance::default();
        let caps = capacities(&rows, gpu, &mut prov);
        if caps.iter().any(|c| c.ran.is_some()) {
            let p = out.join(format!("{slug}-capacity.png"));
            plot_capacity(&p, gpu, &caps, &prov)?;
            written.push(p);
        }
    }
    println!("{} rows from {} file(s); text font {font}", rows.len(), inputs.len());
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

    fn row(cell: &str, h: usize, b: usize, d: f64, approach: &str, us: Option<f64>, commit: &str) -> Row {
        Row {
            cell: cell.into(),
            h,
            b,
            density: d,
            t: 256,
            dtype: "fp16".into(),
            approach: approach.into(),
            us,
            gpu: "NVIDIA H200".into(),
            driver: "1".into(),
            date: "2026-11-29".into(),
            commit: commit.into(),
            note: String::new(),
            src: "x.csv".into(),
        }
    }

    #[test]
    fn slug() {
        assert_eq!(gpu_slug("NVIDIA H200"), "h200");
        assert_eq!(gpu_slug("NVIDIA GeForce RTX 4090"), "geforce-rtx-4090");
        assert_eq!(fmt_num(0.01), "0.01");
        assert_eq!(fmt_num(0.3), "0.3");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(15.26), "15.3");
    }

    #[test]
    fn best_peer_matches_density_for_sparse_and_any_for_dense() {
        let mut failed = row("gru", 512, 4, 1.0, "cublas_graph", Some(1.0), "p");
        failed.note = "CHECK FAILED; x".into();
        let rows = vec![
            row("gru", 512, 4, 0.1, "sprnn", Some(2.0), "a"),
            row("gru", 512, 4, 0.3, "sprnn", Some(4.0), "a"),
            row("gru", 512, 4, 0.5, "sprnn", None, "a"),
            row("gru", 512, 4, 1.0, "cudnn", Some(10.0), "p"),
            row("gru", 512, 4, 0.1, "cusparse_csr", Some(6.0), "p"),
            row("gru", 512, 4, 0.3, "cusparse_csr", Some(30.0), "p"),
            row("gru", 512, 16, 0.1, "cusparse_csr", Some(1.0), "p"),
            row("lstm", 512, 4, 0.1, "sprnn", Some(2.0), "a"),
            failed,
        ];
        let (s, prov) = speedup_series(&rows, "NVIDIA H200", 512, 256);
        assert_eq!(s.len(), 1, "lstm has no peer: left out");
        assert_eq!(s[0].label, "gru B=4");
        assert_eq!(s[0].pts, vec![Pt { x: 0.1, y: 3.0, hollow: false }, Pt { x: 0.3, y: 2.5, hollow: false }]);
        assert_eq!(prov.commits["peers"].iter().collect::<Vec<_>>(), vec!["p"]);
        // A later run of the same configuration replaces the point (file order, not commit
        // name); another T is another chart.
        let mut rows = rows;
        rows.push(row("gru", 512, 4, 0.1, "sprnn", Some(1.0), "0"));
        let mut long = row("gru", 512, 4, 0.1, "sprnn", Some(0.5), "0");
        long.t = 1024;
        rows.push(long);
        let (s, prov) = speedup_series(&rows, "NVIDIA H200", 512, 256);
        assert_eq!(s[0].pts, vec![Pt { x: 0.1, y: 6.0, hollow: false }, Pt { x: 0.3, y: 2.5, hollow: false }]);
        assert_eq!(prov.commits["sprnn"].iter().collect::<Vec<_>>(), vec!["0", "a"]);
        assert!(speedup_series(&rows, "NVIDIA H200", 512, 1024).0.is_empty(), "no peer at T = 1024");
    }

    #[test]
    fn floor_pairs_same_commit_and_capacity_bounds() {
        let rows = vec![
            row("lstm", 512, 4, 0.1, "sprnn", Some(3.0), "a"),
            row("lstm", 512, 4, 0.1, "floor", Some(2.0), "a"),
            row("lstm", 512, 4, 0.1, "sprnn", Some(9.0), "b"),
            row("lstm", 512, 4, 0.3, "sprnn", None, "a"),
            row("lstm", 512, 4, 0.5, "sprnn", None, "a"),
            row("lstm", 512, 4, 0.01, "sprnn", None, "b"),
        ];
        let mut prov = Provenance::default();
        let s = floor_series(&rows, "NVIDIA H200", 512, 256, "lstm", &mut prov);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].label, "B=4");
        assert_eq!(s[0].pts[0].y, 1.5);
        let caps = capacities(&rows, "NVIDIA H200", &mut prov);
        assert_eq!(caps, vec![Capacity { cell: "lstm".into(), h: 512, b: 4, ran: Some(0.1), failed_above: Some(0.3) }]);
    }

    #[test]
    fn per_cell_speedup_and_capacity_search_series() {
        let mut rows = vec![
            row("gru", 512, 4, 0.1, "sprnn", Some(2.0), "a"),
            row("gru", 1024, 4, 0.1, "sprnn", Some(4.0), "a"),
            row("gru", 512, 4, 1.0, "cudnn", Some(10.0), "p"),
            row("gru", 1024, 4, 1.0, "cudnn", Some(20.0), "p"),
            row("lstm", 512, 4, 0.1, "sprnn", Some(2.0), "a"),
            row("gru", 9000, 4, 0.01, "sprnn_capacity", Some(7.0), "a"),
            row("gru", 8000, 4, 0.01, "sprnn_capacity", Some(6.0), "a"),
            row("gru", 1000, 4, 1.0, "sprnn_capacity", Some(3.0), "a"),
            row("gru", 1000, 4, 1.0, "dense_persistent", Some(3.0), "a"),
        ];
        let (s, _) = speedup_series_cell(&rows, "NVIDIA H200", "gru", 256);
        assert_eq!(s.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(), vec!["H=512 B=4", "H=1024 B=4"]);
        assert_eq!(s[0].pts, vec![Pt { x: 0.1, y: 5.0, hollow: true }]);
        assert_eq!(s[1].pts[0].y, 5.0);
        rows.push(row("lstm", 2048, 4, 1.0, "flashrnn_capacity", Some(9.0), "p"));
        let mut prov = Provenance::default();
        let cap = capacity_search(&rows, "NVIDIA H200", &mut prov);
        // The last row of a configuration counts (8000 replaced 9000 at d = 0.01).
        assert_eq!(cap["gru"].sprnn[&(4, 0, "a".to_string())], vec![CapPoint { density: 0.01, h: 8000, us: Some(6.0) }, CapPoint { density: 1.0, h: 1000, us: Some(3.0) }]);
        assert_eq!(cap["gru"].dense, vec![("sprnn dense B=4 @a".to_string(), 1000, Some(3.0))]);
        assert_eq!(cap["lstm"].dense, vec![("FlashRNN fused B=4 @p".to_string(), 2048, Some(9.0))]);
        assert!(cap["lstm"].sprnn.is_empty());
        // A later search at another commit replaces the point and the dense reference.
        rows.push(row("gru", 8500, 4, 0.01, "sprnn_capacity", Some(6.5), "0"));
        // ("0" sorts before "p" but comes later in the file: the file's order decides.)
        rows.push(row("gru", 1000, 4, 1.0, "dense_persistent", Some(2.9), "0"));
        let cap = capacity_search(&rows, "NVIDIA H200", &mut Provenance::default());
        let rank_0 = commit_rank(&rows, "0");
        assert_eq!(cap["gru"].sprnn[&(4, rank_0, "0".to_string())], vec![CapPoint { density: 0.01, h: 8500, us: Some(6.5) }]);
        assert_eq!(cap["gru"].sprnn[&(4, 0, "a".to_string())], vec![CapPoint { density: 1.0, h: 1000, us: Some(3.0) }]);
        assert_eq!(cap["gru"].dense, vec![("sprnn dense B=4 @0".to_string(), 1000, Some(2.9))]);
    }

    #[test]
    fn reads_both_writers_density_formats() {
        let dir = std::env::temp_dir().join(format!("sprnn-plots-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.csv");
        std::fs::write(
            &p,
            "cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,date,commit,note\n\
             gru,512,4,1,256,fp16,sprnn,,G,d,x,c,\"not run: a, b\"\n\
             gru,512,4,1.0,256,fp16,cudnn,2.5,G,d,x,c,n\n",
        )
        .unwrap();
        let rows = read_csv(&p, "r.csv").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].us, None);
        assert_eq!(rows[0].note, "not run: a, b");
        assert!(same_density(rows[0].density, rows[1].density));
        assert_eq!(rows[1].us, Some(2.5));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
