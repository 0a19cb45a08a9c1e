//! Row selection for the charts: which rows each chart draws (the newest measurement of each
//! configuration, the best peer of an sprnn row, the floor of the same run, the capacity
//! bounds), as series of points with the provenance of the rows used. No drawing here.

use std::collections::{BTreeMap, BTreeSet};

use crate::results::{gates, same_density, Row, DENSE_PEERS, PEERS};

/// Where the rows came from: GPU(s), driver(s), date(s), commits (split by role), files.
#[derive(Default)]
pub(crate) struct Provenance {
    pub(crate) gpus: BTreeSet<String>,
    pub(crate) drivers: BTreeSet<String>,
    pub(crate) dates: BTreeSet<String>,
    pub(crate) commits: BTreeMap<&'static str, BTreeSet<String>>,
    pub(crate) files: BTreeSet<String>,
    /// Peer approaches with a usable row for the configurations plotted.
    pub(crate) peers_seen: BTreeSet<String>,
}

impl Provenance {
    pub(crate) fn add(&mut self, role: &'static str, r: &Row) {
        self.gpus.insert(r.gpu.clone());
        self.drivers.insert(if r.driver.is_empty() { "?".into() } else { r.driver.clone() });
        self.dates.insert(if r.date.is_empty() { "?".into() } else { r.date.clone() });
        self.commits.entry(role).or_default().insert(if r.commit.is_empty() { "?".into() } else { r.commit.clone() });
        self.files.insert(r.src.clone());
    }

    pub(crate) fn lines(&self) -> Vec<String> {
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
pub(crate) struct Pt {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) hollow: bool,
}

/// One line: its legend label and points sorted by x.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) pts: Vec<Pt>,
    /// Legend order: (gates, cell, B, T, rank of the commit by its first row in the input).
    pub(crate) sort: (usize, String, usize, usize, usize),
}

/// Commits in the order of their first row (the files are appended run after run).
fn commit_rank(rows: &[Row], commit: &str) -> usize {
    rows.iter().position(|r| r.commit == commit).unwrap_or(usize::MAX)
}

/// A configuration measured at a commit: (GPU, cell, H, B, density bits, T, commit).
type MeasurementKey = (String, String, usize, usize, u64, usize, String);

/// A configuration: (GPU, cell, H, B, T, density bits).
type ConfigKey = (String, String, usize, usize, usize, u64);

/// Last row per (gpu, cell, H, B, density, T, commit) of one approach, with a number.
fn measured<'a>(rows: &'a [Row], approach: &str) -> Vec<&'a Row> {
    let mut last: BTreeMap<MeasurementKey, &Row> = BTreeMap::new();
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
    let mut best: BTreeMap<ConfigKey, (usize, &Row)> = BTreeMap::new();
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
pub(crate) fn speedup_series(rows: &[Row], gpu: &str, h: usize, t: usize) -> (Vec<Series>, Provenance) {
    speedup_series_by(rows, gpu, |r| r.h == h && r.t == t, |s| ((gates(&s.cell), s.cell.clone(), s.b, 0, 0), label(&s.cell, s.b)))
}

/// Speedup series of one GPU, cell and T (label `H=.. B=..`), and the rows used.
pub(crate) fn speedup_series_cell(rows: &[Row], gpu: &str, cell: &str, t: usize) -> (Vec<Series>, Provenance) {
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
pub(crate) struct CapPoint {
    pub(crate) density: f64,
    pub(crate) h: usize,
    pub(crate) us: Option<f64>,
}

/// What the capacity-search chart shows for one cell: sprnn's points per (B, commit) and the
/// dense persistent references (label, H, µs).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CapacityPanel {
    pub(crate) sprnn: BTreeMap<(usize, usize, String), Vec<CapPoint>>,
    pub(crate) dense: Vec<(String, usize, Option<f64>)>,
}

/// The capacity-search rows of one GPU, per cell (last row per configuration and commit).
pub(crate) fn capacity_search(rows: &[Row], gpu: &str, prov: &mut Provenance) -> BTreeMap<String, CapacityPanel> {
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
pub(crate) fn floor_series(rows: &[Row], gpu: &str, h: usize, t: usize, cell: &str, prov: &mut Provenance) -> Vec<Series> {
    let floors = measured(rows, "floor");
    let floor_of = |s: &Row| {
        floors.iter().copied().find(|f| {
            f.gpu == s.gpu && f.cell == s.cell && f.h == s.h && f.b == s.b && f.t == s.t && f.commit == s.commit && same_density(f.density, s.density)
        })
    };
    let paired = measured(rows, "sprnn").into_iter().filter(|r| r.gpu == gpu && r.h == h && r.t == t && r.cell == cell && floor_of(r).is_some());
    let mut by: BTreeMap<SeriesKey, (String, Vec<Pt>)> = BTreeMap::new();
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
pub(crate) struct Capacity {
    pub(crate) cell: String,
    pub(crate) h: usize,
    pub(crate) b: usize,
    pub(crate) ran: Option<f64>,
    pub(crate) failed_above: Option<f64>,
}

/// The largest density that ran, and the densities tried that did not run.
type RanAndFailed = (Option<f64>, Vec<f64>);

/// The capacity of each (cell, H, B) of `gpu`'s sprnn rows.
pub(crate) fn capacities(rows: &[Row], gpu: &str, prov: &mut Provenance) -> Vec<Capacity> {
    // Per (cell, H, B): the largest density that ran, and the densities that did not.
    let mut map: BTreeMap<(String, usize, usize), RanAndFailed> = BTreeMap::new();
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
}
