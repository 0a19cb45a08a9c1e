//! The PTX linker rustc calls for `nvptx64-nvidia-cuda`.
//!
//! rustc invokes it as `--export-symbol NAME … <crate>.o <dep>.rlib … --target-cpu sm_XX -o
//! out.ptx` (the interface of `llvm-bitcode-linker`). Objects and rlib members are LLVM bitcode.
//! It links them with `llvm-link` (archive members only where needed), internalizes everything
//! but the exported kernels and optimizes with `opt` (full-unroll thresholds, so register
//! arrays stay in registers), and emits PTX with `llc`. The LLVM tools come from the pinned
//! toolchain's `llvm-tools` component; their folder is passed in [`LLVM_BIN_ENV`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set (to anything) when this binary runs as the linker.
pub const LINKER_MODE_ENV: &str = "SPRNN_PTX_LINK";
/// Folder of `llvm-link`, `opt` and `llc`.
pub const LLVM_BIN_ENV: &str = "SPRNN_LLVM_BIN";
/// PTX ISA feature given to llc.
pub const PTX_ISA: &str = "+ptx80";
/// Unrolling options: a `[u32; N]` list indexed in a `for k in 0..N` loop must unroll fully.
pub const UNROLL_ARGS: [&str; 2] = ["-unroll-threshold=20000", "-unroll-full-max-count=1024"];

pub fn main(args: Vec<String>) -> Result<(), String> {
    let mut exports = Vec::new();
    let mut inputs = Vec::new();
    let mut out = None;
    let mut cpu = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--export-symbol" => exports.push(it.next().ok_or("--export-symbol needs a value")?),
            "-o" => out = Some(PathBuf::from(it.next().ok_or("-o needs a value")?)),
            "--target-cpu" => cpu = Some(it.next().ok_or("--target-cpu needs a value")?),
            "-L" | "--target" | "--linker-flavor" | "--llvm-bin-dir" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => inputs.push(PathBuf::from(s)),
        }
    }
    let out = out.ok_or("no -o output given")?;
    let cpu = cpu.ok_or("no --target-cpu given")?;
    if exports.is_empty() {
        return Err("no exported kernels".into());
    }
    let bin = PathBuf::from(std::env::var_os(LLVM_BIN_ENV).ok_or("SPRNN_LLVM_BIN is not set")?);
    let work = out.with_extension("link");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    let mut objects = Vec::new();
    let mut members = Vec::new();
    for input in &inputs {
        match input.extension().and_then(|e| e.to_str()) {
            Some("rlib") | Some("a") => members.extend(extract_bitcode(input, &work)?),
            _ => objects.push(input.clone()),
        }
    }
    // The crate's own objects (one per codegen unit) are linked whole first: llvm-link's
    // `--only-needed` applies to every input after the first, so linking them in the same call
    // as the archive members would drop the kernels of every codegen unit but the first.
    let crate_bc = work.join("crate.bc");
    crate::run(Command::new(bin.join("llvm-link")).args(&objects).arg("-o").arg(&crate_bc))?;
    let linked = work.join("linked.bc");
    let mut cmd = Command::new(bin.join("llvm-link"));
    cmd.arg(&crate_bc);
    if !members.is_empty() {
        cmd.arg("--only-needed").args(&members);
    }
    crate::run(cmd.arg("-o").arg(&linked))?;

    let optimized = work.join("opt.bc");
    crate::run(
        Command::new(bin.join("opt"))
            .arg(format!("--internalize-public-api-list={}", exports.join(",")))
            .arg("-passes=internalize,globaldce,default<O3>")
            .args(UNROLL_ARGS)
            .arg(&linked)
            .arg("-o")
            .arg(&optimized),
    )?;
    crate::run(
        Command::new(bin.join("llc"))
            .arg(format!("-mcpu={cpu}"))
            .arg(format!("-mattr={PTX_ISA}"))
            .arg("-O3")
            .arg(&optimized)
            .arg("-o")
            .arg(&out),
    )?;
    let ptx = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::write(&out, add_register_budgets(&ptx)?).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(())
}

/// Gives every recurrent-kernel entry (grid and cluster-resident) and dense-slab entry its
/// `.maxnreg` budget (`sprnn_kernels::format::register_budget`, `shared_register_budget`,
/// `cluster_register_budget`, `dense_register_budget`; a phase-clock probe its kernel's), right
/// after its parameter list.
fn add_register_budgets(ptx: &str) -> Result<String, String> {
    let mut out = String::with_capacity(ptx.len() + 4096);
    let mut pending: Option<u32> = None;
    for line in ptx.lines() {
        if let Some(rest) = line.trim_start().strip_prefix(".visible .entry ") {
            let name = rest.split('(').next().unwrap_or("");
            if name.starts_with("sprnn_sw_") {
                let (n, bt, gated) = sprnn_kernels::format::parse_shared_kernel_name(name)
                    .ok_or_else(|| format!("odd kernel name in PTX: {line}"))?;
                pending = Some(sprnn_kernels::format::shared_register_budget(n, bt, gated));
            } else if name.starts_with("sprnn_recurrent_") || name.starts_with("sprnn_gated_") {
                let (n, bt, h32, gated) = sprnn_kernels::format::parse_recurrent_kernel_name(name)
                    .ok_or_else(|| format!("odd kernel name in PTX: {line}"))?;
                pending = Some(sprnn_kernels::format::register_budget(n, bt, h32, gated));
            } else if name.starts_with("sprnn_cluster_") {
                let (n, bt, gated) = sprnn_kernels::format::parse_cluster_kernel_name(name)
                    .ok_or_else(|| format!("odd kernel name in PTX: {line}"))?;
                pending = Some(sprnn_kernels::format::cluster_register_budget(n, bt, gated));
            } else if name.starts_with("sprnn_dense_") || name.starts_with(sprnn_kernels::format::CLOCKS_PREFIX) {
                // A phase-clock probe gets its kernel's budget.
                let kernel = name.strip_prefix(sprnn_kernels::format::CLOCKS_PREFIX).map_or(name.to_string(), |k| format!("sprnn_{k}"));
                let (mt, kw, half) = sprnn_kernels::format::parse_dense_kernel_name(&kernel)
                    .ok_or_else(|| format!("odd kernel name in PTX: {line}"))?;
                pending = Some(sprnn_kernels::format::dense_register_budget(mt, kw, half));
            }
        }
        if line == "{" {
            if let Some(r) = pending.take() {
                out.push_str(&format!(".maxnreg {r}\n"));
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// Writes the LLVM-bitcode members of an archive into `dir`; returns their paths.
fn extract_bitcode(archive: &Path, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let stem = archive.file_stem().unwrap().to_string_lossy().to_string();
    let mut ar = ar::Archive::new(file);
    let mut paths = Vec::new();
    let mut i = 0;
    while let Some(entry) = ar.next_entry() {
        let mut entry = entry.map_err(|e| format!("{}: {e}", archive.display()))?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(|e| e.to_string())?;
        let is_bitcode = data.starts_with(b"BC\xC0\xDE") || data.starts_with(&[0xDE, 0xC0, 0x17, 0x0B]);
        if is_bitcode {
            let p = dir.join(format!("{stem}.{i}.bc"));
            std::fs::write(&p, &data).map_err(|e| e.to_string())?;
            paths.push(p);
            i += 1;
        }
    }
    Ok(paths)
}
