//! `cargo xtask <task>`: sprnn's project tasks.
//!
//! - `build-ptx [--check]`: compiles `kernels-gpu` for `nvptx64-nvidia-cuda`, links the bitcode
//!   to PTX for every target architecture, writes it zlib-compressed to `host/kernels/*.ptx.z`
//!   (the text stays in `target/ptx/<arch>/…/sprnn_kernels.ptx` for reading), and runs the
//!   ptxas resource report when ptxas is available. `--check` fails when the committed PTX
//!   differs from a fresh build.
//! - `ptx-diff REV [--arch sm_90|sm_80] [--all]`: which kernel entry points of the committed
//!   PTX differ from those at git revision `REV`, register and label numbering aside (which
//!   code is the code that was measured); see `ptx_diff`.
//! - `gpu-bundle [DIR]`: builds the test and bench executables in release mode and copies them
//!   with a run script into `DIR` (default `bundle/`), for a GPU machine with no Rust toolchain.
//! - `plots [--out DIR] [CSV...]`: PNG charts of benchmark CSVs (default: `bench/results/*.csv`
//!   except `*-correctness.csv` and `*-exchange-probe.csv`, into `bench/plots/`); see `plots`.
//! - `report [--results | --out FILE] [CSV...]`: the markdown summary of the same CSVs (speed per
//!   configuration against the best peer of the same run, × floor, capacity); printed, written
//!   to FILE, or with `--results` into `bench/RESULTS.md` between its markers; see `report`.
//! - `bench [ARGS]`: on a machine with a GPU (and PyTorch for the peers), builds the bundle and
//!   runs `bundle/run.sh bench-all ARGS`: sprnn, its floor and the peers in one run, into one
//!   CSV (`OUT_CSV`, default `bench/results/DATE-bench-all.csv`).
//!
//! When started with `SPRNN_PTX_LINK=1` in its environment this binary is the linker rustc
//! calls for the nvptx target (see `link`).

mod bundle;
mod link;
mod plots;
mod mode_plot;
mod probe_plot;
mod report;
mod results;
mod select;
mod ptxas;
mod ptx;
mod ptx_diff;

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::var_os(link::LINKER_MODE_ENV).is_some() {
        return report(link::main(std::env::args().skip(1).collect()));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-ptx") => ptx::build_ptx(rest.contains(&"--check")),
        Some("gpu-bundle") => bundle::gpu_bundle(rest.first().copied().unwrap_or("bundle")),
        Some("plots") => plots::plots(&rest),
        Some("report") => report::report(&rest),
        Some("bench") => bundle::bench(&rest),
        Some("ptx-diff") => ptx_diff::ptx_diff(&rest),
        _ => {
            eprintln!("usage: cargo xtask build-ptx [--check] | ptx-diff REV [--arch ARCH] [--all] | gpu-bundle [DIR] | bench [ARGS...] | plots [--out DIR] [CSV...] | report [--results | --out FILE] [CSV...]");
            return ExitCode::from(2);
        }
    };
    report(result)
}

fn report(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command, failing with its stderr when it exits non-zero.
pub(crate) fn run(cmd: &mut std::process::Command) -> Result<std::process::Output, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}):\n{}{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}
