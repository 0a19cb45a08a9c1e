//! `cargo xtask gpu-bundle [DIR]`: everything needed to run sprnn's tests and benchmarks on a
//! GPU machine that has no Rust toolchain, in one folder.
//!
//! The folder holds the release test executables (`tests/`), the benchmark and demo programs
//! (`bin/`), the peer benchmark script (`peers/`) and `run.sh`. The PTX is embedded in every
//! executable. Copy the folder to the GPU machine and run `DIR/run.sh` (all tests) or
//! `DIR/run.sh bench …` / `DIR/run.sh demo`.

use std::path::Path;
use std::process::Command;

use crate::{run, workspace_root};

const RUN_SH: &str = r#"#!/usr/bin/env bash
# Runs sprnn's GPU bundle. Usage:
#   run.sh [test]            every test executable (GPU tests run; none is skipped silently)
#   run.sh test FILTER...    test executables with a libtest filter
#   run.sh bench ARGS...     the benchmark (bin/sprnn-bench ARGS)
#   run.sh demo ARGS...      the demo (bin/sprnn-demo ARGS)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
what=${1:-test}; [ $# -gt 0 ] && shift
export SPRNN_REQUIRE_GPU=${SPRNN_REQUIRE_GPU:-1}
case "$what" in
  test)
    rc=0
    for t in "$here"/tests/*; do
      echo "== $(basename "$t")"
      "$t" --test-threads=1 "$@" || rc=1
    done
    exit $rc ;;
  bench) exec "$here/bin/sprnn-bench" "$@" ;;
  demo) exec "$here/bin/sprnn-demo" "$@" ;;
  *) echo "usage: run.sh [test|bench|demo] ARGS..." >&2; exit 2 ;;
esac
"#;

pub fn gpu_bundle(dir: &str) -> Result<(), String> {
    let root = workspace_root();
    let dir = if Path::new(dir).is_absolute() { Path::new(dir).to_path_buf() } else { root.join(dir) };
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["tests", "bin", "peers"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let out = run(Command::new("cargo").current_dir(&root).args([
        "test", "--release", "--no-run", "--message-format=json", "-p", "sprnn", "-p", "sprnn-tests",
    ]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut n = 0;
    for line in text.lines().filter(|l| l.contains("\"executable\":\"") && l.contains("\"test\":true")) {
        let exe = line.split("\"executable\":\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("");
        let name = Path::new(exe).file_name().unwrap().to_string_lossy();
        let short = name.rsplit_once('-').map(|(a, _)| a.to_string()).unwrap_or(name.to_string());
        std::fs::copy(exe, dir.join("tests").join(&short)).map_err(|e| format!("{exe}: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("no test executables found".into());
    }
    run(Command::new("cargo").current_dir(&root).args(["build", "--release", "-p", "sprnn-bench", "--bins"]))?;
    for bin in ["sprnn-bench", "sprnn-demo"] {
        std::fs::copy(root.join("target/release").join(bin), dir.join("bin").join(bin)).map_err(|e| format!("{bin}: {e}"))?;
    }
    for entry in std::fs::read_dir(root.join("bench/peers")).map_err(|e| e.to_string())? {
        let p = entry.map_err(|e| e.to_string())?.path();
        if p.is_file() {
            std::fs::copy(&p, dir.join("peers").join(p.file_name().unwrap())).map_err(|e| e.to_string())?;
        }
    }
    let sh = dir.join("run.sh");
    std::fs::write(&sh, RUN_SH).map_err(|e| e.to_string())?;
    run(Command::new("chmod").arg("+x").arg(&sh))?;
    println!("bundle in {} ({n} test executables, sprnn-bench, sprnn-demo)", dir.display());
    Ok(())
}
