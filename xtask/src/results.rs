//! The benchmark results as data: the rows of the CSV files that `sprnn-bench` and
//! `bench/peers/peers.py` write (columns `cell,H,B,density,T,dtype,approach,us_per_step,gpu,
//! driver,date,commit,note`), how they are read, and the facts about approaches and cells that
//! both `plots` and `report` use.

use std::path::{Path, PathBuf};

/// Peer approaches (everything `peers.py` writes at a configuration of the sweep).
pub(crate) const PEERS: &[&str] = &["cudnn", "cublas_graph", "cusparse_csr", "cusparse_bsr", "semi_structured", "flashrnn"];
/// Peers that use the full matrix: their rows (density 1.0) hold for every density.
pub(crate) const DENSE_PEERS: &[&str] = &["cudnn", "cublas_graph", "flashrnn"];

/// One CSV row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// `rnn_tanh`, `rnn_relu`, `gru`, `lstm` (or `projection`).
    pub(crate) cell: String,
    /// Hidden size H.
    pub(crate) h: usize,
    /// Batch B.
    pub(crate) b: usize,
    /// Fraction of `W_hh` kept (1.0 for the dense peers).
    pub(crate) density: f64,
    /// Steps T per sequence.
    pub(crate) t: usize,
    /// Arithmetic: `fp16`, `fp32`, `bf16`.
    pub(crate) dtype: String,
    /// What was measured: `sprnn`, `floor`, a peer, a capacity search.
    pub(crate) approach: String,
    /// µs per step; `None` where it did not run (the note says why).
    pub(crate) us: Option<f64>,
    /// GPU name.
    pub(crate) gpu: String,
    /// Driver version.
    pub(crate) driver: String,
    /// Day of the run (UTC).
    pub(crate) date: String,
    /// Commit measured.
    pub(crate) commit: String,
    /// Launch figures, check results, or why it did not run.
    pub(crate) note: String,
    /// Source file, as shown in the charts.
    pub(crate) src: String,
}

/// Whether two densities are the same number (the writers print them differently: `1`, `1.0`).
pub(crate) fn same_density(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

/// Gate blocks `G` of a cell: LSTM 4, GRU 3, RNN 1.
pub(crate) fn gates(cell: &str) -> usize {
    match cell {
        "lstm" => 4,
        "gru" => 3,
        _ => 1,
    }
}

/// The rows of one CSV file; `shown` is its name as the charts and the summary give it.
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

/// The CSV files read when none are named: every `bench/results/*.csv` except
/// `*-correctness.csv` and `*-exchange-probe.csv`, sorted by name.
fn default_inputs(root: &Path) -> Result<Vec<PathBuf>, String> {
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

/// The rows of `inputs` (default: [`default_inputs`] under `root`), in file order, and each
/// file's name relative to `root` (as given where it lies outside). `what` ends the error when
/// there is no file: "no CSV files to `what`".
pub(crate) fn read_inputs(root: &Path, mut inputs: Vec<PathBuf>, what: &str) -> Result<(Vec<Row>, Vec<String>), String> {
    if inputs.is_empty() {
        inputs = default_inputs(root)?;
    }
    if inputs.is_empty() {
        return Err(format!("no CSV files to {what}"));
    }
    let (mut rows, mut names) = (Vec::new(), Vec::new());
    for p in &inputs {
        let abs = std::fs::canonicalize(p).unwrap_or(p.clone());
        let name = abs.strip_prefix(root).map(|r| r.display().to_string()).unwrap_or_else(|_| p.display().to_string());
        rows.extend(read_csv(p, &name)?);
        names.push(name);
    }
    Ok((rows, names))
}

#[cfg(test)]
mod tests {
    use super::*;

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
