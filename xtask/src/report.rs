//! `cargo xtask report [--results] [--out FILE] [CSV...]`: the markdown summary of the benchmark
//! CSVs for `bench/RESULTS.md`.
//!
//! Input: the rows files of `sprnn-bench` and `bench/peers/peers.py` (columns `cell,H,B,density,
//! T,dtype,approach,us_per_step,gpu,driver,date,commit,note`); by default every
//! `bench/results/*.csv` except `*-correctness.csv`. Rows are grouped into **runs**: the same GPU,
//! driver, date and commit (what `run.sh bench-all` and `run.sh capacity` give every row of one
//! call). Comparisons are made inside a run only; when a configuration was measured twice in a
//! run, the last row counts.
//!
//! For each run:
//!
//! - **Speed**: one line per (cell, H, B, density, T): µs per step of sprnn and of each peer
//!   approach (the fastest dtype of each; dense peers, whose rows have density 1.0, count at every
//!   density; rows whose note says `CHECK FAILED` are left out), sprnn's time as a multiple of
//!   its exchange floor, the best peer and sprnn's speedup over it.
//! - **Capacity**: one line per `sprnn_capacity` row: H, the dense-equivalent parameters `G·H²`,
//!   µs per step, × floor, the best peer measured at the same (cell, H, B, T), sprnn's speedup
//!   over it, and the parameters as a multiple of the largest dense persistent layer — the larger
//!   of sprnn's own at density 1.0 (`dense_persistent`) and FlashRNN's fused kernel
//!   (`flashrnn_capacity`) for the same cell, B and T — with the target (≥ 5× the dense
//!   persistent capacity at ≥ 2× the best peer's speed).
//!
//! The output goes to stdout, to `--out FILE`, or with `--results` into `bench/RESULTS.md`
//! between the lines [`BEGIN`] and [`END`] (appended at the end when they are not there yet).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::results::{gates, read_inputs, same_density, Row, DENSE_PEERS, PEERS};
use crate::workspace_root;

/// First line of the generated block in `bench/RESULTS.md`.
pub const BEGIN: &str = "<!-- cargo xtask report: begin (generated; edits between these lines are overwritten) -->";
/// Last line of the generated block in `bench/RESULTS.md`.
pub const END: &str = "<!-- cargo xtask report: end -->";

/// Approaches of the capacity search (not part of the speed table).
const CAPACITY: &[&str] = &["sprnn_capacity", "dense_persistent", "flashrnn_capacity"];

/// Rows of one call of the bundle: same GPU, driver, date and commit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RunKey {
    gpu: String,
    driver: String,
    date: String,
    commit: String,
}

impl RunKey {
    fn of(r: &Row) -> RunKey {
        RunKey { gpu: r.gpu.clone(), driver: r.driver.clone(), date: r.date.clone(), commit: r.commit.clone() }
    }
}

/// A peer's best time at a configuration: (approach, dtype, µs).
type PeerTime = (String, String, f64);

/// One line of the speed table.
#[derive(Clone, Debug, PartialEq)]
struct SpeedLine {
    cell: String,
    h: usize,
    b: usize,
    density: f64,
    t: usize,
    /// sprnn's µs per step; `Err(note)` when its row has no number (e.g. does not fit).
    sprnn: Option<Result<f64, String>>,
    floor: Option<f64>,
    /// Fastest dtype of each peer approach.
    peers: BTreeMap<String, PeerTime>,
}

impl SpeedLine {
    fn best_peer(&self) -> Option<&PeerTime> {
        self.peers.values().min_by(|a, b| a.2.total_cmp(&b.2))
    }

    fn speedup(&self) -> Option<f64> {
        match (&self.sprnn, self.best_peer()) {
            (Some(Ok(us)), Some(p)) => Some(p.2 / us),
            _ => None,
        }
    }
}

/// One line of the capacity table.
#[derive(Clone, Debug, PartialEq)]
struct CapacityLine {
    cell: String,
    b: usize,
    t: usize,
    density: f64,
    h: usize,
    us: Option<f64>,
    floor: Option<f64>,
    best_peer: Option<PeerTime>,
    /// The largest dense persistent layer of the run for this cell, B, T: (approach, H, µs).
    dense: Option<(String, usize, Option<f64>)>,
    note: String,
}

impl CapacityLine {
    fn params(&self) -> usize {
        gates(&self.cell) * self.h * self.h
    }

    fn capacity_ratio(&self) -> Option<f64> {
        self.dense.as_ref().map(|(_, h, _)| self.params() as f64 / (gates(&self.cell) * h * h) as f64)
    }

    fn speedup(&self) -> Option<f64> {
        Some(self.best_peer.as_ref()?.2 / self.us?)
    }

    fn meets_target(&self) -> Option<bool> {
        Some(self.capacity_ratio()? >= 5.0 && self.speedup()? >= 2.0)
    }
}

fn usable_peer(r: &Row) -> bool {
    PEERS.contains(&r.approach.as_str()) && r.us.is_some() && !r.note.contains("CHECK FAILED")
}

fn is_dense_peer(r: &Row) -> bool {
    DENSE_PEERS.contains(&r.approach.as_str()) || r.density >= 1.0
}

/// A measurement within a run: (run, approach, dtype, cell, H, B, density bits, T).
type MeasurementKey = (RunKey, String, String, String, usize, usize, u64, usize);

/// The last row of each (run, approach, dtype, cell, H, B, density, T).
fn last_rows(rows: &[Row]) -> Vec<&Row> {
    let mut last: BTreeMap<MeasurementKey, usize> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        last.insert((RunKey::of(r), r.approach.clone(), r.dtype.clone(), r.cell.clone(), r.h, r.b, r.density.to_bits(), r.t), i);
    }
    let mut idx: Vec<usize> = last.into_values().collect();
    idx.sort_unstable();
    idx.into_iter().map(|i| &rows[i]).collect()
}

/// Fastest usable peer of each approach at (cell, H, B, T) and `density` among `run`'s rows.
fn peers_at(run: &[&Row], cell: &str, h: usize, b: usize, t: usize, density: f64) -> BTreeMap<String, PeerTime> {
    let mut out: BTreeMap<String, PeerTime> = BTreeMap::new();
    for r in run.iter().filter(|r| usable_peer(r) && r.cell == cell && r.h == h && r.b == b && r.t == t) {
        if !is_dense_peer(r) && !same_density(r.density, density) {
            continue;
        }
        let us = r.us.unwrap();
        if out.get(&r.approach).is_none_or(|p| us < p.2) {
            out.insert(r.approach.clone(), (r.approach.clone(), r.dtype.clone(), us));
        }
    }
    out
}

fn runs(rows: &[Row]) -> BTreeMap<RunKey, Vec<&Row>> {
    let mut by: BTreeMap<RunKey, Vec<&Row>> = BTreeMap::new();
    for r in last_rows(rows) {
        by.entry(RunKey::of(r)).or_default().push(r);
    }
    by
}

/// The speed table of one run, sorted by (gates, cell, H, B, T, density).
fn speed_lines(run: &[&Row]) -> Vec<SpeedLine> {
    // Configurations: every density of sprnn and sparse-peer rows; a (cell, H, B, T) with dense
    // peers only gets one line at density 1.0, unless it is a capacity point (its own table).
    let mut keys: BTreeSet<(usize, String, usize, usize, usize, u64)> = BTreeSet::new();
    let key = |r: &Row, d: f64| (gates(&r.cell), r.cell.clone(), r.h, r.b, r.t, d.to_bits());
    for r in run.iter().filter(|r| !CAPACITY.contains(&r.approach.as_str())) {
        let sweep_row = r.approach == "sprnn" || (usable_peer(r) && !is_dense_peer(r));
        if sweep_row {
            keys.insert(key(r, r.density));
        }
    }
    for r in run.iter().filter(|r| usable_peer(r) && is_dense_peer(r)) {
        let capacity_point = run.iter().any(|c| CAPACITY.contains(&c.approach.as_str()) && c.cell == r.cell && c.h == r.h && c.b == r.b && c.t == r.t);
        if !capacity_point && !keys.iter().any(|k| k.1 == r.cell && k.2 == r.h && k.3 == r.b && k.4 == r.t) {
            keys.insert(key(r, 1.0));
        }
    }
    let mut lines: Vec<SpeedLine> = keys
        .into_iter()
        .map(|(_, cell, h, b, t, d)| {
            let d = f64::from_bits(d);
            let find = |approach: &str| run.iter().rev().find(|r| r.approach == approach && r.cell == cell && r.h == h && r.b == b && r.t == t && same_density(r.density, d));
            let sprnn = find("sprnn").map(|r| r.us.ok_or_else(|| r.note.clone()));
            let floor = find("floor").and_then(|r| r.us);
            let peers = peers_at(run, &cell, h, b, t, d);
            SpeedLine { cell, h, b, density: d, t, sprnn, floor, peers }
        })
        .collect();
    lines.sort_by(|a, b| (gates(&a.cell), &a.cell, a.h, a.b, a.t).cmp(&(gates(&b.cell), &b.cell, b.h, b.b, b.t)).then(a.density.total_cmp(&b.density)));
    lines
}

/// The capacity table of one run.
fn capacity_lines(run: &[&Row]) -> Vec<CapacityLine> {
    let mut lines = Vec::new();
    for r in run.iter().filter(|r| r.approach == "sprnn_capacity") {
        // The largest dense persistent layer measured in this run for the cell, B and T.
        let dense = run
            .iter()
            .filter(|d| (d.approach == "dense_persistent" || d.approach == "flashrnn_capacity") && d.cell == r.cell && d.b == r.b && d.t == r.t && d.h > 0)
            .filter(|d| d.us.is_some())
            .max_by_key(|d| d.h)
            .map(|d| (d.approach.clone(), d.h, d.us));
        let floor = run.iter().rev().find(|f| f.approach == "floor" && f.cell == r.cell && f.h == r.h && f.b == r.b && f.t == r.t && same_density(f.density, r.density)).and_then(|f| f.us);
        let best_peer = peers_at(run, &r.cell, r.h, r.b, r.t, r.density).into_values().min_by(|a, b| a.2.total_cmp(&b.2));
        lines.push(CapacityLine {
            cell: r.cell.clone(),
            b: r.b,
            t: r.t,
            density: r.density,
            h: r.h,
            us: r.us,
            floor,
            best_peer,
            dense,
            note: r.note.clone(),
        });
    }
    lines.sort_by(|a, b| (gates(&a.cell), &a.cell, a.b, a.t).cmp(&(gates(&b.cell), &b.cell, b.b, b.t)).then(a.density.total_cmp(&b.density)));
    lines
}

fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map(f).unwrap_or_else(|| "—".into())
}

fn millions(p: usize) -> String {
    let m = p as f64 / 1e6;
    if m >= 10.0 { format!("{m:.0} M") } else { format!("{m:.2} M") }
}

/// Why sprnn has no number, shortened for a table cell.
fn why(note: &str) -> String {
    if note.contains("does not fit") || note.contains("shared memory") {
        "does not fit".into()
    } else if note.is_empty() {
        "not run".into()
    } else {
        let n = note.trim_start_matches("not run: ");
        let short: String = n.chars().take(40).collect();
        format!("not run ({}{})", short.replace('|', "/"), if n.chars().count() > 40 { "…" } else { "" })
    }
}

/// The markdown summary of `rows` (read from `files`).
fn render(rows: &[Row], files: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Summary of the rows (`cargo xtask report`)\n");
    let _ = writeln!(s, "Rows from {}. A run is the rows of one GPU, driver, date and commit; every comparison below stays inside one run. µs per step; peers at their fastest dtype; dense peers (density 1.0) count at every density.\n", files.join(", "));
    for (key, run) in runs(rows) {
        let commit = if key.commit.is_empty() { "?" } else { &key.commit };
        let _ = writeln!(s, "### {} · driver {} · {} · commit {}\n", key.gpu, if key.driver.is_empty() { "?" } else { &key.driver }, if key.date.is_empty() { "?" } else { &key.date }, commit);
        write_speed_table(&mut s, &speed_lines(&run));
        write_capacity_table(&mut s, &capacity_lines(&run));
        write_flashrnn_table(&mut s, &run);
    }
    s
}

/// The speed table of one run (nothing when it has no line).
fn write_speed_table(s: &mut String, lines: &[SpeedLine]) {
    if !lines.is_empty() {
        let peers: Vec<&str> = PEERS.iter().copied().filter(|p| lines.iter().any(|l| l.peers.contains_key(*p))).collect();
        let _ = write!(s, "| cell | H | B | d | T | sprnn | floor | × floor |");
        for p in &peers {
            let _ = write!(s, " {p} |");
        }
        let _ = writeln!(s, " best peer | speedup |");
        let _ = writeln!(s, "|{}", " --- |".repeat(8 + peers.len() + 2));
        for l in lines {
            let sprnn = match &l.sprnn {
                Some(Ok(us)) => num(*us),
                Some(Err(note)) => why(note),
                None => "—".into(),
            };
            let xf = match (&l.sprnn, l.floor) {
                (Some(Ok(us)), Some(f)) => format!("{:.2}", us / f),
                _ => "—".into(),
            };
            let _ = write!(s, "| {} | {} | {} | {} | {} | {} | {} | {} |", l.cell, l.h, l.b, l.density, l.t, sprnn, opt(l.floor, num), xf);
            for p in &peers {
                let _ = write!(s, " {} |", l.peers.get(*p).map_or("—".into(), |(_, dt, us)| format!("{} {dt}", num(*us))));
            }
            let best = l.best_peer().map_or("—".into(), |(a, dt, us)| format!("{a} {dt} {}", num(*us)));
            let _ = writeln!(s, " {best} | {} |", opt(l.speedup(), |x| format!("**{x:.2}×**")));
        }
        let _ = writeln!(s);
    }
}

/// The capacity table of one run (nothing when it has no line).
fn write_capacity_table(s: &mut String, caps: &[CapacityLine]) {
    if !caps.is_empty() {
        let _ = writeln!(s, "Capacity (largest layer the planner accepts, a multiple of the search step; dense persistent capacity: the larger of sprnn at density 1.0 and FlashRNN's fused kernel, same cell, B and T):\n");
        let _ = writeln!(s, "| cell | B | T | d | H | dense-equivalent params | sprnn | × floor | best peer at this H | speedup | largest dense persistent | × its params | target ≥ 5× at ≥ 2× |");
        let _ = writeln!(s, "|{}", " --- |".repeat(13));
        for c in caps {
            let sprnn = match c.us {
                Some(us) => num(us),
                None => why(&c.note),
            };
            let xf = match (c.us, c.floor) {
                (Some(us), Some(f)) => format!("{:.2}", us / f),
                _ => "—".into(),
            };
            let best = c.best_peer.as_ref().map_or("—".into(), |(a, dt, us)| format!("{a} {dt} {}", num(*us)));
            let dense = c.dense.as_ref().map_or("—".into(), |(a, h, us)| format!("{a} H={h} ({}, {} µs)", millions(gates(&c.cell) * h * h), opt(*us, num)));
            let target = match c.meets_target() {
                Some(true) => "met",
                Some(false) => "not met",
                None => "—",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.cell,
                c.b,
                c.t,
                c.density,
                c.h,
                millions(c.params()),
                sprnn,
                xf,
                best,
                opt(c.speedup(), |x| format!("{x:.2}×")),
                dense,
                opt(c.capacity_ratio(), |x| format!("{x:.1}×")),
                target
            );
        }
        let _ = writeln!(s);
    }
}

/// FlashRNN's capacity rows of one run (nothing when it has none).
fn write_flashrnn_table(s: &mut String, run: &[&Row]) {
    let fr: Vec<&&Row> = run.iter().filter(|r| r.approach == "flashrnn_capacity").collect();
    if !fr.is_empty() {
        let _ = writeln!(s, "FlashRNN's fused kernel, largest H it built and ran:\n");
        let _ = writeln!(s, "| cell | B | T | H | dense-equivalent params | µs per step |");
        let _ = writeln!(s, "|{}", " --- |".repeat(6));
        for r in fr {
            let _ = writeln!(s, "| {} | {} | {} | {} | {} | {} |", r.cell, r.b, r.t, r.h, millions(gates(&r.cell) * r.h * r.h), opt(r.us, num));
        }
        let _ = writeln!(s);
    }
}

/// Replaces the generated block of `text` (between [`BEGIN`] and [`END`]) with `block`, or
/// appends it when there is none.
fn splice(text: &str, block: &str) -> String {
    let body = format!("{BEGIN}\n\n{}\n{END}\n", block.trim_end());
    match (text.find(BEGIN), text.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{body}{}", &text[..a], text[b + END.len()..].trim_start_matches('\n')),
        _ => format!("{}\n{body}", text.trim_end_matches('\n').to_string() + "\n"),
    }
}

/// Entry point of `cargo xtask report`.
pub fn report(args: &[&str]) -> Result<(), String> {
    let root = workspace_root();
    let (mut out, mut results, mut inputs) = (None, false, Vec::new());
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out needs a file")?)),
            "--results" => results = true,
            "-h" | "--help" => {
                println!("usage: cargo xtask report [--results | --out FILE] [CSV...]   (default: bench/results/*.csv except *-correctness.csv; prints the summary, or writes it into bench/RESULTS.md between its markers, or to FILE)");
                return Ok(());
            }
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    let (rows, names) = read_inputs(&root, inputs, "report")?;
    let shown: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let md = render(&rows, &shown);
    if results {
        let path = root.join("bench/RESULTS.md");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(&path, splice(&text, &md)).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote the summary of {} rows into {}", rows.len(), path.display());
    } else if let Some(p) = out {
        std::fs::write(&p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
        println!("wrote the summary of {} rows to {}", rows.len(), p.display());
    } else {
        print!("{md}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::read_csv;

    fn sample() -> Vec<Row> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/report-sample.csv");
        read_csv(&p, "report-sample.csv").unwrap()
    }

    fn run<'a>(rows: &'a [Row], commit: &str) -> Vec<&'a Row> {
        runs(rows).into_iter().find(|(k, _)| k.commit == commit).map(|(_, v)| v).unwrap()
    }

    #[test]
    fn parses_the_sample_and_splits_it_into_runs() {
        let rows = sample();
        assert_eq!(rows.len(), 24);
        let r = runs(&rows);
        assert_eq!(r.keys().map(|k| k.commit.as_str()).collect::<Vec<_>>(), vec!["aaa1111", "bbb2222"]);
        // The repeated sprnn row of run aaa1111 counts once, with its last value.
        let a = run(&rows, "aaa1111");
        let s: Vec<f64> = a.iter().filter(|r| r.approach == "sprnn" && same_density(r.density, 0.1)).filter_map(|r| r.us).collect();
        assert_eq!(s, vec![3.0]);
    }

    #[test]
    fn speedup_uses_the_best_peer_of_the_same_run() {
        let rows = sample();
        let lines = speed_lines(&run(&rows, "aaa1111"));
        let at = |h: usize, d: f64| lines.iter().find(|l| l.h == h && same_density(l.density, d)).unwrap();
        // d = 0.1: cuSPARSE (6.0) beats the dense cuBLAS loop (8.0); the 1.0 µs cuBLAS row of the
        // other run and the failed FlashRNN row are not used.
        let l = at(2304, 0.1);
        assert_eq!(l.best_peer().unwrap().0, "cusparse_csr");
        assert_eq!(l.speedup(), Some(2.0));
        assert_eq!(l.sprnn.clone().unwrap().unwrap() / l.floor.unwrap(), 1.5);
        assert!(!l.peers.contains_key("flashrnn"), "CHECK FAILED rows are ignored");
        // cuDNN: the faster of fp16 and fp32.
        assert_eq!(l.peers["cudnn"], ("cudnn".into(), "fp32".into(), 17.0));
        // d = 0.3: the dense loop is the best peer (counts at every density).
        let l = at(2304, 0.3);
        assert_eq!(l.best_peer().unwrap().0, "cublas_graph");
        assert_eq!(l.speedup(), Some(2.0));
        // d = 0.5: sprnn did not fit; no speedup.
        let l = at(2304, 0.5);
        assert!(matches!(&l.sprnn, Some(Err(n)) if n.contains("does not fit")));
        assert_eq!(l.speedup(), None);
        // Run bbb2222 is compared with its own (faster) dense peer only.
        let lines = speed_lines(&run(&rows, "bbb2222"));
        let l = lines.iter().find(|l| l.cell == "rnn_tanh" && l.h == 2304 && same_density(l.density, 0.1)).unwrap();
        assert_eq!(l.sprnn, Some(Ok(2.0)));
        assert!(l.peers.contains_key("cublas_graph"));
        assert_eq!(l.speedup(), Some(0.5));
    }

    #[test]
    fn capacity_against_the_largest_dense_persistent_layer() {
        let rows = sample();
        let caps = capacity_lines(&run(&rows, "aaa1111"));
        assert_eq!(caps.len(), 2);
        let sparse = &caps[0];
        assert_eq!((sparse.h, sparse.density), (19232, 0.01));
        assert_eq!(sparse.params(), 19232 * 19232);
        // FlashRNN's H = 4096 is larger than sprnn's dense H = 2048.
        assert_eq!(sparse.dense.as_ref().unwrap().0, "flashrnn_capacity");
        assert!((sparse.capacity_ratio().unwrap() - (19232.0f64 / 4096.0).powi(2)).abs() < 1e-9);
        assert_eq!(sparse.speedup(), Some(4.0));
        assert_eq!(sparse.meets_target(), Some(true));
        assert_eq!(sparse.floor, Some(8.0));
        let dense = &caps[1];
        assert_eq!(dense.h, 2048);
        assert_eq!(dense.meets_target(), Some(false));
        let md = render(&rows, &["`x.csv`".into()]);
        assert!(md.contains("| rnn_tanh | 4 | 256 | 0.01 | 19232 | 370 M | 10.0 | 1.25 | cublas_graph fp16 40.0 | 4.00× | flashrnn_capacity H=4096 (17 M, 12.0 µs) | 22.0× | met |"), "{md}");
        assert!(md.contains("| rnn_tanh | 2304 | 4 | 0.5 | 256 | does not fit |"), "{md}");
        // Capacity points stay out of the speed table.
        assert!(!md.contains("| rnn_tanh | 19232 | 4 |") && !md.contains("| rnn_tanh | 2048 | 4 |"), "{md}");
    }

    #[test]
    fn splice_replaces_or_appends_the_block() {
        let once = splice("# R\n\ntext\n", "A\n");
        assert!(once.starts_with("# R\n\ntext\n") && once.contains(&format!("{BEGIN}\n\nA\n{END}\n")));
        let twice = splice(&(once.clone() + "after\n"), "B\n");
        assert!(twice.contains("\nB\n") && !twice.contains("\nA\n") && twice.ends_with("after\n"), "{twice}");
        assert_eq!(twice.matches(BEGIN).count(), 1);
    }
}
