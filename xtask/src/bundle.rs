//! `cargo xtask gpu-bundle [DIR]`: everything needed to run sprnn's tests and benchmarks on a
//! GPU machine that has no Rust toolchain, in one folder.
//!
//! The folder holds the release test executables (`tests/`), the benchmark, exchange-probe and demo programs and
//! the model examples `nmt` and `deepspeech` (`bin/`), the peer benchmark scripts (`peers/`:
//! every file of `bench/peers`, i.e. `peers.py`, FlashRNN's `flashrnn_peer.py`, the shared
//! `peer_common.py`, and `models.py` for cuDNN whole-model timings), `COMMIT` (the short hash it was built from,
//! `-dirty` when tracked files had changes) and `run.sh`. The PTX is embedded in every
//! executable. Copy the folder to the GPU machine and run `DIR/run.sh` (all tests) or
//! `DIR/run.sh bench …` / `DIR/run.sh demo`. The same folder is also written as one compressed
//! file beside it for copying, `DIR.tar.xz`: xz with a 512 MiB dictionary, so the PTX that every
//! executable embeds is stored about once (≈ 10 MiB for ≈ 290 MiB of executables; gzip's
//! 32 KiB window gave 53 MiB), and `tar xJf DIR.tar.xz` on the GPU machine gives the folder back
//! (decoding needs about 512 MiB of memory). Where `xz` is missing it is `DIR.tar.gz` instead.
//!
//! `DIR/run.sh bench-all ARGS…` measures sprnn, its exchange floor and the peers in one go, into
//! one CSV (`$OUT_CSV`, default `./bench-all-DATE.csv`): first `bin/sprnn-bench ARGS… --out CSV`,
//! then `python3 peers/peers.py` (needs PyTorch with CUDA) over the same `--cells`, `--hidden`,
//! `--batch`, `--density` and `--steps` (given as `--key V` or `--key=V`; where not given,
//! `run.sh` passes the sweep defaults below to both programs, so the two sweeps always match),
//! with `--time-budget $PEERS_TIME_BUDGET` (seconds, default 600) and any extra words in
//! `$PEERS_ARGS`. The rows of both get the same driver (`nvidia-smi`), date (UTC) and commit
//! (`COMMIT`) unless `--driver`, `--date`, `--commit` (and `--gpu-name`) are given. `$PYTHON`
//! overrides `python3`. It exits non-zero when either program failed, after running both.
//!
//! FlashRNN (the dense persistent peer): when the workspace has a `.whl` folder (wheels fetched
//! for the GPU machine, see `bench/peers/flashrnn_setup.sh`; not in git), its `*.whl` files are
//! copied to `DIR/wheels/`. `FLASHRNN=1 DIR/run.sh bench-all …` then installs them offline with
//! `peers/flashrnn_setup.sh` (into `$FLASHRNN_DIR`, default `/tmp/sprnn-flashrnn`, whose JIT
//! build cache later runs on the same machine reuse) and runs `peers.py --with-flashrnn
//! --flashrnn-time-budget $FLASHRNN_TIME_BUDGET` (default 400 s); `FLASHRNN_CAPACITY=1` adds
//! `--flashrnn-capacity`.
//!
//! `DIR/run.sh python-test` installs the Python package's wheel (`python/`, built here by
//! `python/build_wheel.sh`) offline into `$SPRNN_PY_DIR` and runs its pytest suite with the
//! GPU tests required; `DIR/run.sh python-bench ARGS…` runs `python/bench.py` (rows
//! `sprnn_py`, `sprnn_py_kernel`, `sprnn_py_layer`, `cudnn`).
//!
//! `DIR/run.sh ab PATH=COMMIT…` is the A/B protocol of the speed work: every layer of
//! `$AB_LAYERS`, `$AB_REPEATS` times, timed by older benchmark binaries and this bundle's one
//! after the other, with `AB_PEERS=1` (and `FLASHRNN=1`) the peers in the same run, then a table
//! of median [range].
//! `DIR/run.sh probe ARGS…` runs the exchange probe, `bin/sprnn-probe --commit COMMIT ARGS…`
//! (`--all --out FILE` for every sweep; it reads the driver version from `nvidia-smi` and the
//! date itself; a `--commit` among ARGS wins over the bundle's).
//!
//! `DIR/run.sh capacity ARGS…` measures capacity: `bin/sprnn-bench --capacity ARGS… --out CSV
//! --pairs-out …`, then the peers (`$CAPACITY_PEERS`, default `cudnn,cublas_graph,cusparse_csr`)
//! at the same cells, hidden sizes, batches and densities (`peers.py --pairs`); with `FLASHRNN=1` also FlashRNN's
//! capacity search (`peers.py --flashrnn-capacity`).

use std::path::Path;
use std::process::Command;

use crate::{run, workspace_root};

const RUN_SH: &str = r#"#!/usr/bin/env bash
# Runs sprnn's GPU bundle. Usage:
#   run.sh [test]            every test executable (GPU tests run; none is skipped silently)
#   run.sh test FILTER...    test executables with a libtest filter
#   run.sh bench ARGS...     the benchmark (bin/sprnn-bench ARGS)
#   run.sh bench-all ARGS... sprnn, its floor and the peers in one run, into one CSV:
#                            bin/sprnn-bench ARGS --out "$OUT_CSV", then peers/peers.py over the
#                            same --cells/--hidden/--batch/--density/--steps, --out "$OUT_CSV",
#                            --time-budget "$PEERS_TIME_BUDGET" (default 600 s) and $PEERS_ARGS.
#                            OUT_CSV defaults to ./bench-all-DATE.csv; PYTHON to python3.
#                            FLASHRNN=1: also FlashRNN's fused kernel (wheels/ installed offline by
#                            peers/flashrnn_setup.sh into $FLASHRNN_DIR, default /tmp/sprnn-flashrnn;
#                            own budget $FLASHRNN_TIME_BUDGET, default 400 s); FLASHRNN_CAPACITY=1:
#                            also FlashRNN's capacity search.
#   run.sh capacity ARGS...  sprnn's capacity (bin/sprnn-bench --capacity ARGS --out "$OUT_CSV"),
#                            then the peers $CAPACITY_PEERS (default cudnn,cublas_graph,cusparse_csr)
#                            at the same (cell, H, B, density); FLASHRNN=1: FlashRNN's capacity
#                            search as well.
#   run.sh probe ARGS...     the exchange probe (bin/sprnn-probe --commit "$(cat COMMIT)" ARGS;
#                            e.g. run.sh probe --all --out probe.csv)
#   run.sh demo ARGS...      the demo (bin/sprnn-demo ARGS)
#   run.sh models [ARGS...]  the model examples bin/nmt and bin/deepspeech (ARGS to both; their
#                            MODEL lines), then peers/models.py for cuDNN over the same shapes
#                            with --compare (needs PyTorch with CUDA; fails without it)
#   run.sh python-test [PYTEST ARGS...]  the Python package's tests (python/tests, pytest) against
#                            the bundle's wheel, installed offline into $SPRNN_PY_DIR (default
#                            /tmp/sprnn-python); needs PyTorch with CUDA (pytest comes with the
#                            bundle when the machine lacks it)
#   run.sh python-bench ARGS...  python/bench.py (sprnn from Python vs cuDNN; --out CSV);
#                            FLASHRNN=1: also FlashRNN's fused kernel in the same process (the
#                            bundle's wheels/ installed by peers/flashrnn_setup.sh, as bench-all)
#   run.sh ab [PATH=COMMIT...]  an interleaved A/B: for each of $AB_REPEATS repetitions (default
#                            3), each layer of $AB_LAYERS (CELL:H:DENSITY,..., default the
#                            headline, RNN-tanh H = 1152 d = 0.1 and LSTM H = 1152 d = 0.1) at
#                            B = 4, T = 256 is timed by every benchmark binary PATH (rows labelled
#                            COMMIT) and then by this bundle's; AB_PEERS=1 adds peers.py at the same
#                            layers each repetition (FLASHRNN=1: FlashRNN's fused kernel, built
#                            in the first; peers.py's log, with the configurations a time budget
#                            left out, goes to stderr). Rows into $OUT_CSV (default
#                            ./ab-DATE.csv), then a table of median [range] per layer, approach
#                            and commit.
#   run.sh sanitize [TOOLS]  compute-sanitizer (default: memcheck racecheck synccheck initcheck)
#                            on the smoke test, on every kernel variant (the shared-weights ones
#                            included; racecheck runs each shared-weights entry point once) and on
#                            the cluster mode's reference test; a tool's run fails when it reports
#                            any error. The
#                            cluster kernel is left out of racecheck: its readers poll their own
#                            shared memory while peers store into it (the tagged exchange, a race
#                            by design that racecheck reports as hazards between the publication's
#                            remote store and the wait's loads; bench/RESULTS.md, session 8)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
what=${1:-test}; [ $# -gt 0 ] && shift
export SPRNN_REQUIRE_GPU=${SPRNN_REQUIRE_GPU:-1}
export SPRNN_CLI_BIN=${SPRNN_CLI_BIN:-$here/bin/sprnn}
# The rows' metadata: --driver/--date/--commit as given, else nvidia-smi, the UTC date and
# bundle/COMMIT; sets `meta`, the arguments every writer of rows gets.
set_meta() {
  [ -n "$driver" ] || driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
  [ -n "$day" ] || day=$(date -u +%F)
  [ -n "$commit" ] || commit=$(cat "$here/COMMIT" 2>/dev/null)
  meta=("${gpu[@]}" --driver "$driver" --date "$day" --commit "$commit" --out "$out")
}
# FlashRNN options for peers.py (FLASHRNN=1): installs the bundle's wheels, sets flashrnn_args.
flashrnn_args=()
flashrnn_setup() {
  [ "${FLASHRNN:-0}" = 1 ] || return 0
  local env
  if env=$(bash "$here/peers/flashrnn_setup.sh" "$here/wheels" "${FLASHRNN_DIR:-/tmp/sprnn-flashrnn}"); then
    eval "$env"
    flashrnn_args=(--with-flashrnn --flashrnn-time-budget "${FLASHRNN_TIME_BUDGET:-400}")
    [ "${FLASHRNN_CAPACITY:-0}" = 1 ] && flashrnn_args+=(--flashrnn-capacity)
  else
    echo "== FlashRNN set-up failed (no wheels/ in the bundle? see peers/flashrnn_setup.sh): peers run without it" >&2
  fi
  return 0
}
case "$what" in
  test)
    rc=0
    for t in "$here"/tests/*; do
      echo "== $(basename "$t")"
      "$t" --test-threads=1 "$@" || rc=1
    done
    exit $rc ;;
  bench) exec "$here/bin/sprnn-bench" "$@" ;;
  bench-all)
    # The sweep (sprnn-bench's defaults): passed explicitly to both programs so they match.
    cells=rnn_tanh,gru,lstm hidden=1152,2304,4608,5760 batch=1,4,16,64
    density=0.01,0.05,0.1,0.2,0.3,0.5 steps=256
    out=${OUT_CSV:-$PWD/bench-all-$(date -u +%F).csv}
    gpu=() driver= day= commit= rest=()
    while [ $# -gt 0 ]; do
      a=$1; shift; k=${a%%=*}
      case "$k" in
        --cells|--hidden|--batch|--density|--steps|--out|--gpu-name|--driver|--date|--commit) ;;
        *) rest+=("$a"); continue ;;
      esac
      if [ "$k" != "$a" ]; then v=${a#*=}
      elif [ $# -gt 0 ]; then v=$1; shift
      else echo "run.sh bench-all: $a needs a value" >&2; exit 2; fi
      case "$k" in
        --cells) cells=$v ;; --hidden) hidden=$v ;; --batch) batch=$v ;;
        --density) density=$v ;; --steps) steps=$v ;; --out) out=$v ;;
        --gpu-name) gpu=(--gpu-name "$v") ;; --driver) driver=$v ;; --date) day=$v ;;
        --commit) commit=$v ;;
      esac
    done
    sweep=(--cells "$cells" --hidden "$hidden" --batch "$batch" --density "$density" --steps "$steps")
    set_meta
    echo "== bench-all: sprnn and floor -> $out"
    "$here/bin/sprnn-bench" "${sweep[@]}" "${rest[@]}" "${meta[@]}"; rc_s=$?
    echo "== bench-all: peers (time budget ${PEERS_TIME_BUDGET:-600} s) -> $out"
    flashrnn_setup
    # shellcheck disable=SC2086  # PEERS_ARGS: extra words for peers.py
    "${PYTHON:-python3}" "$here/peers/peers.py" "${sweep[@]}" "${meta[@]}" \
      --time-budget "${PEERS_TIME_BUDGET:-600}" "${flashrnn_args[@]}" ${PEERS_ARGS:-}; rc_p=$?
    echo "== bench-all: sprnn-bench exit $rc_s, peers.py exit $rc_p; rows in $out"
    [ $rc_s = 0 ] && [ $rc_p = 0 ] ;;
  capacity)
    out=${OUT_CSV:-$PWD/capacity-$(date -u +%F).csv}
    gpu=() driver= day= commit= rest=() steps=256 batch=4 cells=rnn_tanh,gru,lstm
    while [ $# -gt 0 ]; do
      a=$1; shift; k=${a%%=*}
      case "$k" in
        --cells|--capacity-batch|--steps|--out|--gpu-name|--driver|--date|--commit) ;;
        *) rest+=("$a"); continue ;;
      esac
      if [ "$k" != "$a" ]; then v=${a#*=}
      elif [ $# -gt 0 ]; then v=$1; shift
      else echo "run.sh capacity: $a needs a value" >&2; exit 2; fi
      case "$k" in
        --cells) cells=$v ;; --capacity-batch) batch=$v ;; --steps) steps=$v ;; --out) out=$v ;;
        --gpu-name) gpu=(--gpu-name "$v") ;; --driver) driver=$v ;; --date) day=$v ;;
        --commit) commit=$v ;;
      esac
    done
    set_meta
    pairs=$(mktemp)
    echo "== capacity: sprnn -> $out"
    "$here/bin/sprnn-bench" --capacity --cells "$cells" --capacity-batch "$batch" --steps "$steps" \
      --pairs-out "$pairs" "${rest[@]}" "${meta[@]}"; rc_s=$?
    flashrnn_setup
    # Here FlashRNN is measured at its own capacity, not at sprnn's hidden sizes.
    [ ${#flashrnn_args[@]} -gt 0 ] && flashrnn_args=(--flashrnn-capacity --flashrnn-time-budget "${FLASHRNN_TIME_BUDGET:-400}")
    if [ -s "$pairs" ]; then
      echo "== capacity: peers ${CAPACITY_PEERS:-cudnn,cublas_graph,cusparse_csr} at $(tr '\n' ' ' < "$pairs")-> $out"
      # shellcheck disable=SC2086  # PEERS_ARGS: extra words for peers.py
      "${PYTHON:-python3}" "$here/peers/peers.py" --pairs "@$pairs" --batch "$batch" --steps "$steps" \
        --approaches "${CAPACITY_PEERS:-cudnn,cublas_graph,cusparse_csr}" "${meta[@]}" \
        --time-budget "${PEERS_TIME_BUDGET:-600}" "${flashrnn_args[@]}" ${PEERS_ARGS:-}; rc_p=$?
    else
      echo "== capacity: sprnn-bench found no capacity point; peers not run"; rc_p=1
    fi
    rm -f "$pairs"
    echo "== capacity: sprnn-bench exit $rc_s, peers.py exit $rc_p; rows in $out"
    [ $rc_s = 0 ] && [ $rc_p = 0 ] ;;
  probe)
    # The rows' commit is the bundle's unless ARGS give one (the last --commit wins).
    commit=$(cat "$here/COMMIT" 2>/dev/null)
    exec "$here/bin/sprnn-probe" --commit "${commit:-unknown}" "$@" ;;
  demo) exec "$here/bin/sprnn-demo" "$@" ;;
  models)
    lines=$(mktemp); rc=0
    for m in nmt deepspeech; do
      echo "== $m"
      "$here/bin/$m" "$@" | tee -a "$lines" || rc=1
    done
    for m in nmt deepspeech; do
      echo "== cuDNN: $m"
      "${PYTHON:-python3}" "$here/peers/models.py" --model "$m" --compare "$lines" || rc=1
    done
    rm -f "$lines"
    exit $rc ;;
  ab)
    out=${OUT_CSV:-$PWD/ab-$(date -u +%F).csv}
    gpu=() driver= day= commit=
    set_meta
    layers=${AB_LAYERS:-rnn_tanh:2304:0.3,rnn_tanh:1152:0.1,lstm:1152:0.1}
    pairs=$(echo "$layers" | awk -F, '{for (i = 1; i <= NF; i++) { split($i, f, ":"); printf "%s%s:%s:4:%s", (i > 1 ? "," : ""), f[1], f[2], f[3] }}')
    [ "${AB_PEERS:-0}" = 1 ] && flashrnn_setup
    for ((rep = 1; rep <= ${AB_REPEATS:-3}; rep++)); do
      for layer in ${layers//,/ }; do
        IFS=: read -r cell hidden density <<< "$layer"
        sweep=(--cells "$cell" --hidden "$hidden" --batch 4 --density "$density" --steps 256)
        for other in "$@"; do
          "${other%%=*}" "${sweep[@]}" --out "$out" --driver "$driver" --date "$day" --commit "${other#*=}" > /dev/null \
            || echo "== ab: ${other%%=*} failed at $layer" >&2
        done
        "$here/bin/sprnn-bench" "${sweep[@]}" "${meta[@]}" > /dev/null || echo "== ab: sprnn-bench failed at $layer" >&2
      done
      if [ "${AB_PEERS:-0}" = 1 ]; then
        fr=("${flashrnn_args[@]}")
        [ "$rep" = 1 ] && [ ${#fr[@]} -gt 0 ] && fr+=(--flashrnn-prebuild "$(echo "$pairs" | sed 's/:[^:,]*\(,\|$\)/\1/g')")
        # shellcheck disable=SC2086  # PEERS_ARGS: extra words for peers.py
        "${PYTHON:-python3}" "$here/peers/peers.py" --pairs "$pairs" --steps 256 "${meta[@]}" \
          --time-budget "${PEERS_TIME_BUDGET:-120}" "${fr[@]}" ${PEERS_ARGS:-} >&2 || echo "== ab: peers.py failed" >&2
      fi
      echo "== ab: repetition $rep done"
    done
    "${PYTHON:-python3}" - "$out" <<'PY'
import collections, csv, statistics, sys
times = collections.defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    if r["us_per_step"]:
        times[(r["cell"], r["H"], r["density"], r["approach"], r["commit"])].append(float(r["us_per_step"]))
for k in sorted(times):
    v = times[k]
    print(" ".join(k), "%.3f [%.3f-%.3f] n=%d" % (statistics.median(v), min(v), max(v), len(v)))
PY
    ;;
  sanitize)
    tools=("$@"); [ ${#tools[@]} -gt 0 ] || tools=(memcheck racecheck synccheck initcheck)
    rc=0
    for tool in "${tools[@]}"; do
      filters=(gpu::smoke gpu::every_kernel_variant_matches)
      # racecheck runs each shared-weights entry point once (the whole set takes minutes there)
      if [ "$tool" = racecheck ]; then filters+=(shared::each_shared_weights_entry_point_matches)
      else filters+=(shared::every_shared_weights_variant_matches cluster::cluster_mode_matches_the_reference); fi
      for filter in "${filters[@]}"; do
        echo "== compute-sanitizer --tool $tool: $filter"
        compute-sanitizer --tool "$tool" --error-exitcode 99 \
          "$here/tests/sprnn-tests.it" "$filter" --test-threads=1 || { echo "== $tool $filter: FAILED"; rc=1; }
      done
    done
    exit $rc ;;
  python-test|python-bench)
    py=${PYTHON:-python3}
    site=${SPRNN_PY_DIR:-/tmp/sprnn-python}
    rm -rf "$site"
    "$py" -m pip install -q --no-index --no-deps --target "$site" "$here"/python/sprnn-*.whl || exit 1
    if [ "$what" = python-test ] && ! "$py" -c "import pytest" 2>/dev/null; then
      "$py" -m pip install -q --no-index --no-deps --target "$site" "$here"/python/wheels/*.whl || exit 1
    fi
    [ "$what" = python-bench ] && flashrnn_setup
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    cd "$site" || exit 1
    if [ "$what" = python-test ]; then
      exec "$py" -m pytest -q -rs -p no:cacheprovider "$here/python/tests" "$@"
    fi
    fr=(); [ ${#flashrnn_args[@]} -gt 0 ] && fr=(--with-flashrnn --peers "$here/peers")
    exec "$py" "$here/python/bench.py" --commit "$(cat "$here/COMMIT")" "${fr[@]}" "$@" ;;
  *) echo "usage: run.sh [test|bench|bench-all|capacity|ab|probe|demo|models|python-test|python-bench|sanitize] ARGS..." >&2; exit 2 ;;
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
        "test", "--release", "--no-run", "--message-format=json", "-p", "sprnn", "-p", "sprnn-tests", "-p", "sprnn-cli",
    ]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut n = 0;
    // Test harnesses only: the profile (not just the target) says `"test":true`.
    let is_test = |l: &&str| l.split("\"profile\":{").nth(1).and_then(|p| p.split('}').next()).is_some_and(|p| p.contains("\"test\":true"));
    for line in text.lines().filter(|l| l.contains("\"executable\":\"")).filter(is_test) {
        let exe = line.split("\"executable\":\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("");
        let name = Path::new(exe).file_name().unwrap().to_string_lossy();
        let target = name.rsplit_once('-').map(|(a, _)| a.to_string()).unwrap_or(name.to_string());
        // Package and target together: the `sprnn` library and the `sprnn` program share a target name.
        let package = line.split("\"package_id\":\"").nth(1).and_then(|s| s.split('"').next()).and_then(|id| id.rsplit('#').next()).and_then(|s| s.split('@').next()).unwrap_or("pkg");
        let short = format!("{package}.{target}");
        std::fs::copy(exe, dir.join("tests").join(&short)).map_err(|e| format!("{exe}: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("no test executables found".into());
    }
    run(Command::new("cargo").current_dir(&root).args(["build", "--release", "-p", "sprnn-bench", "-p", "sprnn-cli", "--bins"]))?;
    for bin in ["sprnn-bench", "sprnn-probe", "sprnn-demo", "sprnn"] {
        std::fs::copy(root.join("target/release").join(bin), dir.join("bin").join(bin)).map_err(|e| format!("{bin}: {e}"))?;
    }
    run(Command::new("cargo").current_dir(&root).args(["build", "--release", "-p", "sprnn", "--example", "nmt", "--example", "deepspeech"]))?;
    for ex in ["nmt", "deepspeech"] {
        std::fs::copy(root.join("target/release/examples").join(ex), dir.join("bin").join(ex)).map_err(|e| format!("{ex}: {e}"))?;
    }
    copy_files(&root.join("bench/peers"), &dir.join("peers"))?;
    let wheels = copy_wheels(&root.join(".whl"), &dir.join("wheels"))?;
    python_bundle(&root, &dir.join("python"))?;
    let head = run(Command::new("git").current_dir(&root).args(["rev-parse", "--short", "HEAD"]))
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dirty = run(Command::new("git").current_dir(&root).args(["status", "--porcelain", "--untracked-files=no"]))
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let commit = if head.is_empty() { String::new() } else if dirty { format!("{head}-dirty") } else { head };
    std::fs::write(dir.join("COMMIT"), format!("{commit}\n")).map_err(|e| e.to_string())?;
    let sh = dir.join("run.sh");
    std::fs::write(&sh, RUN_SH).map_err(|e| e.to_string())?;
    run(Command::new("chmod").arg("+x").arg(&sh))?;
    let size = dir_bytes(&dir);
    println!(
        "bundle in {} ({n} test executables, sprnn-bench, sprnn-probe, sprnn-demo, sprnn, nmt, deepspeech; {wheels} wheel(s) for FLASHRNN=1; {:.1} MiB)",
        dir.display(),
        size as f64 / (1 << 20) as f64
    );
    let (parent, name) = match (dir.parent(), dir.file_name()) {
        (Some(p), Some(n)) => (if p.as_os_str().is_empty() { Path::new(".") } else { p }, n),
        _ => return Err(format!("{}: no folder name to archive", dir.display())),
    };
    let have_xz = Command::new("xz").arg("--version").output().is_ok_and(|o| o.status.success());
    let (ext, compressor, unpack) = if have_xz {
        ("tar.xz", "xz -T1 --lzma2=preset=6,dict=512MiB", "tar xJf")
    } else {
        ("tar.gz", "gzip", "tar xzf")
    };
    let archive = parent.join(format!("{}.{ext}", name.to_string_lossy()));
    run(Command::new("tar").arg("-I").arg(compressor).arg("-cf").arg(&archive).arg("-C").arg(parent).arg(name))?;
    let packed = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    println!("archive {} ({:.1} MiB): `{unpack}` it on the GPU machine", archive.display(), packed as f64 / (1 << 20) as f64);
    Ok(())
}

/// The Python package for `run.sh python-test` / `python-bench`: the sprnn wheel (built by
/// `python/build_wheel.sh`), `tests/` and `bench.py` from `python/`, and in `wheels/` pytest's
/// wheels for Python 3.12 (the GPU machine may lack pytest; best effort, it has no network).
fn python_bundle(root: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to.join("tests")).map_err(|e| e.to_string())?;
    let out = run(Command::new("bash").current_dir(root).arg("python/build_wheel.sh"))?;
    let wheel = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let wheel = root.join(&wheel);
    let name = wheel.file_name().ok_or("python/build_wheel.sh printed no wheel")?;
    std::fs::copy(&wheel, to.join(name)).map_err(|e| format!("{}: {e}", wheel.display()))?;
    for entry in std::fs::read_dir(root.join("python/tests")).map_err(|e| e.to_string())? {
        let p = entry.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "py") {
            std::fs::copy(&p, to.join("tests").join(p.file_name().unwrap())).map_err(|e| e.to_string())?;
        }
    }
    std::fs::copy(root.join("python/bench/bench.py"), to.join("bench.py")).map_err(|e| e.to_string())?;
    let py = root.join(".cache/py/bin/python");
    let downloaded = run(Command::new(&py).current_dir(root).args(["-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.12", "-d"]).arg(to.join("wheels")).arg("pytest"));
    if let Err(e) = downloaded {
        eprintln!("gpu-bundle: pytest wheels not downloaded ({e}); run.sh python-test then needs pytest on the GPU machine");
    }
    Ok(())
}

/// Copies the `*.whl` files of `from` (if it exists) into `to`; returns how many.
fn copy_wheels(from: &Path, to: &Path) -> Result<usize, String> {
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(0) };
    let mut n = 0;
    for e in entries {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "whl") {
            std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
            std::fs::copy(&p, to.join(p.file_name().unwrap())).map_err(|e| format!("{}: {e}", p.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { dir_bytes(&p) } else { p.metadata().map_or(0, |m| m.len()) }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Copies every file of `from` (not its folders) into the folder `to`; returns their names.
fn copy_files(from: &Path, to: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let p = entry.map_err(|e| e.to_string())?.path();
        if p.is_file() {
            let name = p.file_name().unwrap();
            std::fs::copy(&p, to.join(name)).map_err(|e| format!("{}: {e}", p.display()))?;
            names.push(name.to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// `cargo xtask bench ARGS`: builds the bundle and runs `run.sh bench-all ARGS` here, writing
/// into `$OUT_CSV` (default `bench/results/<UTC date>-bench-all.csv`).
pub fn bench(args: &[&str]) -> Result<(), String> {
    gpu_bundle("bundle")?;
    let root = workspace_root();
    let out = std::env::var("OUT_CSV").unwrap_or_else(|_| {
        let day = run(Command::new("date").args(["-u", "+%F"])).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
        root.join("bench/results").join(format!("{day}-bench-all.csv")).display().to_string()
    });
    let status = Command::new(root.join("bundle/run.sh"))
        .arg("bench-all")
        .args(args)
        .env("OUT_CSV", &out)
        .status()
        .map_err(|e| format!("cannot run bundle/run.sh: {e}"))?;
    if status.success() {
        println!("rows in {out}");
        Ok(())
    } else {
        Err(format!("bench-all failed ({status}); rows so far in {out}"))
    }
}

#[cfg(test)]
mod tests {
    use super::{copy_files, RUN_SH};
    use std::process::Command;

    /// The bundle's `peers/` gets every file of `bench/peers`: the peer benchmark and the
    /// modules it imports.
    #[test]
    fn bundle_copies_every_peer_script() {
        let root = crate::workspace_root();
        let to = std::env::temp_dir().join(format!("sprnn-bundle-peers-{}", std::process::id()));
        std::fs::create_dir_all(&to).unwrap();
        let names = copy_files(&root.join("bench/peers"), &to).unwrap();
        for name in ["peers.py", "flashrnn_peer.py", "peer_common.py", "models.py", "flashrnn_setup.sh"] {
            assert!(names.iter().any(|n| n == name) && to.join(name).is_file(), "{name} not in the bundle's peers/");
        }
        std::fs::remove_dir_all(&to).unwrap();
    }

    /// `run.sh bench-all` with stub programs that record their arguments.
    #[test]
    fn bench_all_passes_the_same_sweep_to_both_programs() {
        let dir = std::env::temp_dir().join(format!("sprnn-runsh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["bin", "peers"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let sh = dir.join("run.sh");
        std::fs::write(&sh, RUN_SH).unwrap();
        assert!(Command::new("bash").arg("-n").arg(&sh).status().unwrap().success(), "bash -n run.sh");
        let stub = |name: &str, log: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > {}\nexit ${{STUB_RC:-0}}\n", dir.join(log).display())).unwrap();
            Command::new("chmod").arg("+x").arg(&p).status().unwrap();
        };
        stub("bin/sprnn-bench", "bench.args");
        stub("peers/peers.py", "peers.args");
        std::fs::write(dir.join("COMMIT"), "abc1234\n").unwrap();
        let go = |args: &[&str], rc: &str| {
            Command::new("bash")
                .arg(&sh)
                .arg("bench-all")
                .args(args)
                .current_dir(&dir)
                .env("PYTHON", "bash")
                .env("OUT_CSV", "/tmp/x.csv")
                .env("PEERS_ARGS", "--repeats 5")
                .env("STUB_RC", rc)
                .env_remove("PEERS_TIME_BUDGET")
                .output()
                .unwrap()
        };
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap().lines().map(String::from).collect::<Vec<_>>();
        let out = go(&["--cells", "lstm", "--hidden=2304", "--ab", "--repeats", "3", "--driver", "580.1"], "0");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let bench = read("bench.args");
        let peers = read("peers.args");
        let day = String::from_utf8(Command::new("date").args(["-u", "+%F"]).output().unwrap().stdout).unwrap();
        let sweep = ["--cells", "lstm", "--hidden", "2304", "--batch", "1,4,16,64", "--density", "0.01,0.05,0.1,0.2,0.3,0.5", "--steps", "256"];
        let meta = ["--driver", "580.1", "--date", day.trim(), "--commit", "abc1234", "--out", "/tmp/x.csv"];
        let expect_bench: Vec<&str> = sweep.iter().chain(&["--ab", "--repeats", "3"]).chain(&meta).copied().collect();
        assert_eq!(bench, expect_bench);
        let expect_peers: Vec<&str> = sweep.iter().chain(&meta).chain(&["--time-budget", "600", "--repeats", "5"]).copied().collect();
        assert_eq!(peers, expect_peers);
        // A failing program fails the run; a missing value is an error.
        assert!(!go(&[], "3").status.success());
        assert_eq!(go(&["--steps"], "0").status.code(), Some(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `FLASHRNN=1` installs the wheels through `flashrnn_setup.sh` and adds the FlashRNN options;
    /// `run.sh capacity` hands sprnn-bench's capacity points to the peers.
    #[test]
    fn flashrnn_and_capacity_modes() {
        let dir = std::env::temp_dir().join(format!("sprnn-runsh-fr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["bin", "peers", "wheels"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let sh = dir.join("run.sh");
        std::fs::write(&sh, RUN_SH).unwrap();
        let write_exe = |name: &str, body: String| {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/usr/bin/env bash\n{body}")).unwrap();
            Command::new("chmod").arg("+x").arg(&p).status().unwrap();
        };
        let log = |f: &str| dir.join(f).display().to_string();
        // sprnn-bench: records its arguments and writes one capacity point to --pairs-out.
        write_exe(
            "bin/sprnn-bench",
            format!("printf '%s\\n' \"$@\" > {}\nwhile [ $# -gt 0 ]; do [ \"$1\" = --pairs-out ] && echo lstm:1024:4:0.01 > \"$2\"; shift; done\n", log("bench.args")),
        );
        write_exe("peers/peers.py", format!("printf '%s\\n' \"$@\" > {}\necho \"PYTHONPATH=$PYTHONPATH\" >> {}\n", log("peers.args"), log("peers.args")));
        write_exe("peers/flashrnn_setup.sh", format!("echo \"$1 $2\" > {}\necho 'export PYTHONPATH=/stub/site'\n", log("setup.args")));
        std::fs::write(dir.join("COMMIT"), "abc1234\n").unwrap();
        let go = |what: &str, args: &[&str], env: &[(&str, &str)]| {
            let mut c = Command::new("bash");
            c.arg(&sh).arg(what).args(args).current_dir(&dir).env("PYTHON", "bash").env("OUT_CSV", "/tmp/x.csv");
            for k in ["FLASHRNN", "FLASHRNN_CAPACITY", "FLASHRNN_DIR", "FLASHRNN_TIME_BUDGET", "PEERS_ARGS", "CAPACITY_PEERS"] {
                c.env_remove(k);
            }
            for (k, v) in env {
                c.env(k, v);
            }
            c.output().unwrap()
        };
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap().lines().map(String::from).collect::<Vec<_>>();
        let has = |v: &[String], seq: &[&str]| v.windows(seq.len()).any(|w| w.iter().zip(seq).all(|(a, b)| a == b));
        // Without FLASHRNN nothing is installed and peers.py gets no FlashRNN option.
        assert!(go("bench-all", &["--cells", "lstm"], &[]).status.success());
        assert!(!dir.join("setup.args").exists());
        assert!(!read("peers.args").iter().any(|a| a.contains("flashrnn")));
        // FLASHRNN=1: set-up from the bundle's wheels, PYTHONPATH exported, options passed.
        let out = go("bench-all", &["--cells", "lstm"], &[("FLASHRNN", "1"), ("FLASHRNN_CAPACITY", "1"), ("FLASHRNN_DIR", "/tmp/frd")]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(read("setup.args"), vec![format!("{} /tmp/frd", dir.join("wheels").display())]);
        let peers = read("peers.args");
        assert!(has(&peers, &["--with-flashrnn", "--flashrnn-time-budget", "400", "--flashrnn-capacity"]), "{peers:?}");
        assert!(peers.contains(&"PYTHONPATH=/stub/site".to_string()), "{peers:?}");
        // capacity: sprnn-bench --capacity, then the dense peers at its points; FlashRNN's own
        // capacity search (not its run at sprnn's hidden sizes).
        let out = go("capacity", &["--cells=lstm", "--capacity-batch", "4", "--repeats", "3"], &[("FLASHRNN", "1")]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let bench = read("bench.args");
        assert!(has(&bench, &["--capacity", "--cells", "lstm", "--capacity-batch", "4", "--steps", "256"]), "{bench:?}");
        assert!(has(&bench, &["--repeats", "3"]) && has(&bench, &["--out", "/tmp/x.csv"]), "{bench:?}");
        let peers = read("peers.args");
        assert!(peers[0] == "--pairs" && peers[1].starts_with('@'), "{peers:?}");
        assert!(has(&peers, &["--steps", "256", "--approaches", "cudnn,cublas_graph,cusparse_csr"]), "{peers:?}");
        assert!(has(&peers, &["--flashrnn-capacity", "--flashrnn-time-budget", "400"]) && !peers.contains(&"--with-flashrnn".to_string()), "{peers:?}");
        assert!(has(&peers, &["--commit", "abc1234", "--out", "/tmp/x.csv"]), "{peers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `run.sh probe` runs bin/sprnn-probe with the bundle's commit first, so a `--commit`
    /// among the arguments (clap: the last one wins) overrides it, and passes its exit code on.
    #[test]
    fn probe_mode_runs_the_probe_with_the_bundle_commit() {
        let dir = std::env::temp_dir().join(format!("sprnn-runsh-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let sh = dir.join("run.sh");
        std::fs::write(&sh, RUN_SH).unwrap();
        let p = dir.join("bin/sprnn-probe");
        std::fs::write(&p, format!("#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > {}\nexit ${{STUB_RC:-0}}\n", dir.join("probe.args").display())).unwrap();
        Command::new("chmod").arg("+x").arg(&p).status().unwrap();
        std::fs::write(dir.join("COMMIT"), "abc1234\n").unwrap();
        let go = |rc: &str| Command::new("bash").arg(&sh).args(["probe", "--all", "--out", "/tmp/p.csv"]).current_dir(&dir).env("STUB_RC", rc).output().unwrap();
        let out = go("0");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let args: Vec<String> = std::fs::read_to_string(dir.join("probe.args")).unwrap().lines().map(String::from).collect();
        assert_eq!(args, ["--commit", "abc1234", "--all", "--out", "/tmp/p.csv"]);
        assert_eq!(go("1").status.code(), Some(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wheels_are_copied_when_present() {
        let dir = std::env::temp_dir().join(format!("sprnn-wheels-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(super::copy_wheels(&dir.join("none"), &dir.join("out")).unwrap(), 0);
        assert!(!dir.join("out").exists(), "no wheels folder: nothing created");
        std::fs::create_dir_all(dir.join("whl")).unwrap();
        std::fs::write(dir.join("whl/a-1.0-py3-none-any.whl"), b"zip").unwrap();
        std::fs::write(dir.join("whl/notes.txt"), b"x").unwrap();
        assert_eq!(super::copy_wheels(&dir.join("whl"), &dir.join("out")).unwrap(), 1);
        assert!(dir.join("out/a-1.0-py3-none-any.whl").exists() && !dir.join("out/notes.txt").exists());
        assert_eq!(super::dir_bytes(&dir.join("whl")), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The sweep `bench-all` passes to both programs is `sprnn-bench`'s default sweep.
    #[test]
    fn bench_all_sweep_defaults_match_sprnn_bench() {
        let src = std::fs::read_to_string(crate::workspace_root().join("bench/src/bin/sprnn-bench.rs")).unwrap();
        for name in ["cells", "hidden", "batch", "density", "steps"] {
            let decl = src.find(&format!("    {name}: Vec<")).unwrap_or_else(|| panic!("no field {name}"));
            let attr = src[..decl].rfind("default_value = \"").unwrap() + "default_value = \"".len();
            let default = &src[attr..attr + src[attr..].find('"').unwrap()];
            assert!(RUN_SH.contains(&format!("{name}={default}")), "run.sh bench-all: {name} should default to {default}");
        }
    }
}
