//! `cargo xtask build-ptx`: kernels-gpu → PTX for every target architecture, then the ptxas
//! resource report.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::link::{LINKER_MODE_ENV, LLVM_BIN_ENV, UNROLL_ARGS};
use crate::{run, workspace_root};

/// Architectures the PTX is built for; the host picks one by compute capability.
pub const ARCHS: [&str; 2] = ["sm_90", "sm_80"];
const TARGET: &str = "nvptx64-nvidia-cuda";

/// The pinned toolchain named in `rust-toolchain.toml`.
pub fn pinned_toolchain() -> Result<String, String> {
    let text = std::fs::read_to_string(workspace_root().join("rust-toolchain.toml"))
        .map_err(|e| format!("rust-toolchain.toml: {e}"))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("channel").map(|r| r.trim_start_matches([' ', '=']).trim().trim_matches('"').to_string()))
        .ok_or_else(|| "no channel in rust-toolchain.toml".into())
}

fn llvm_bin(toolchain: &str) -> Result<PathBuf, String> {
    let out = run(Command::new("rustc").env("RUSTUP_TOOLCHAIN", toolchain).args(["--print", "sysroot"]))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let out = run(Command::new("rustc").env("RUSTUP_TOOLCHAIN", toolchain).arg("-vV"))?;
    let vv = String::from_utf8_lossy(&out.stdout);
    let host = vv.lines().find_map(|l| l.strip_prefix("host: ")).ok_or("rustc -vV: no host")?;
    let bin = sysroot.join("lib/rustlib").join(host).join("bin");
    if !bin.join("llc").exists() {
        return Err(format!(
            "llc not found in {} — install the component: rustup component add llvm-tools --toolchain {toolchain}",
            bin.display()
        ));
    }
    Ok(bin)
}

/// Path of the committed, zlib-compressed PTX for `arch` (the text itself is also left in the
/// build directory, `target/ptx/<arch>/nvptx64-nvidia-cuda/release/sprnn_kernels.ptx`, for
/// reading).
pub fn ptx_path(arch: &str) -> PathBuf {
    workspace_root().join("host/kernels").join(format!("sprnn_{}.ptx.z", arch.replace('_', "")))
}

/// The PTX text of a committed `.ptx.z` file; `None` when it is missing or does not inflate.
fn read_committed(path: &Path) -> Option<String> {
    inflate(&std::fs::read(path).ok()?)
}

/// The text of zlib-compressed PTX (a `.ptx.z` file's bytes); `None` when it does not inflate.
pub fn inflate(bytes: &[u8]) -> Option<String> {
    use std::io::Read as _;
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(bytes).read_to_string(&mut text).ok()?;
    Some(text)
}

/// `text` zlib-compressed at the best level (the host crate inflates it at run time).
fn deflate(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(text.as_bytes()).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// Compiles and links the kernels for `arch`; returns the PTX text.
pub fn compile(arch: &str, toolchain: &str, llvm: &Path) -> Result<String, String> {
    let root = workspace_root();
    let target_dir = root.join("target/ptx").join(arch);
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut flags = vec![
        format!("-Clinker={}", me.display()),
        format!("-Ctarget-cpu={arch}"),
    ];
    flags.extend(UNROLL_ARGS.iter().map(|a| format!("-Cllvm-args={a}")));
    let status = Command::new("cargo")
        .current_dir(&root)
        .env("RUSTUP_TOOLCHAIN", toolchain)
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
        .env(LINKER_MODE_ENV, "1")
        .env(LLVM_BIN_ENV, llvm)
        .args(["rustc", "--quiet", "-p", "sprnn-kernels", "--release", "--target", TARGET, "-Zbuild-std=core", "--crate-type", "cdylib", "--target-dir"])
        .arg(&target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("kernel build for {arch} failed"));
    }
    let ptx = target_dir.join(TARGET).join("release/sprnn_kernels.ptx");
    std::fs::read_to_string(&ptx).map_err(|e| format!("{}: {e}", ptx.display()))
}

pub fn build_ptx(check: bool) -> Result<(), String> {
    let toolchain = pinned_toolchain()?;
    let llvm = llvm_bin(&toolchain)?;
    let mut stale = Vec::new();
    let mut resources: Vec<crate::ptxas::Resources> = Vec::new();
    for arch in ARCHS {
        let ptx = compile(arch, &toolchain, &llvm)?;
        let path = ptx_path(arch);
        let committed = read_committed(&path).unwrap_or_default();
        if check {
            if committed != ptx {
                stale.push(path.display().to_string());
            }
        } else if committed != ptx {
            std::fs::write(&path, deflate(&ptx)).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote {}", path.strip_prefix(workspace_root()).unwrap().display());
        } else {
            println!("{} is up to date", path.strip_prefix(workspace_root()).unwrap().display());
        }
        resources.extend(crate::ptxas::report(arch, &ptx)?);
    }
    if !resources.is_empty() {
        let table = registers_table(&resources)?;
        let path = workspace_root().join(REGISTERS_RS);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != table {
            if check {
                stale.push(path.display().to_string());
            } else {
                std::fs::write(&path, table).map_err(|e| format!("{}: {e}", path.display()))?;
                println!("wrote {REGISTERS_RS}");
            }
        }
    }
    if !stale.is_empty() {
        return Err(format!(
            "committed PTX differs from a fresh build: {} — run `cargo xtask build-ptx` and commit",
            stale.join(", ")
        ));
    }
    if check {
        println!("committed PTX matches a fresh build");
    }
    Ok(())
}

/// The planner's register table, generated from the ptxas report.
pub const REGISTERS_RS: &str = "host/src/layout/registers.rs";

/// Renders `registers.rs`: per variant the most registers any architecture's ptxas used.
fn registers_table(rows: &[crate::ptxas::Resources]) -> Result<String, String> {
    let mut out = String::from(
        "//! Registers per thread of each recurrent-kernel variant `(N, BT, H32, GATED)`.\n//!\n//! **Generated by `cargo xtask build-ptx`** from `ptxas -v` for every target architecture\n//! (the largest count of any architecture); do not edit. `cargo xtask build-ptx --check` fails\n//! when it is stale. The planner ([`super::plan`]) reads only [`kernel_registers`].\n\n/// `(N, BT, H32, GATED, registers per thread)` for every kernel variant (`N` in\n/// [`LIST_LENGTHS`](sprnn_kernels::format::LIST_LENGTHS), `BT` in\n/// [`BATCH_TILES`](sprnn_kernels::format::BATCH_TILES), `H32` in\n/// [`HIDDEN_F32`](sprnn_kernels::format::HIDDEN_F32), `GATED` in\n/// [`GATED`](sprnn_kernels::format::GATED)).\npub const KERNEL_REGISTERS: &[(usize, usize, bool, bool, u32)] = &[\n",
    );
    let mut variants: Vec<(usize, usize, bool, bool, u32)> = Vec::new();
    let mut dense: Vec<(usize, usize, bool, u32)> = Vec::new();
    let mut shared: Vec<(usize, usize, bool, u32)> = Vec::new();
    for r in rows {
        if r.kernel.starts_with("sprnn_dense_") {
            let (mt, kw, half) = sprnn_kernels::format::parse_dense_kernel_name(&r.kernel).ok_or_else(|| format!("odd kernel name {}", r.kernel))?;
            match dense.iter_mut().find(|v| v.0 == mt && v.1 == kw && v.2 == half) {
                Some(v) => v.3 = v.3.max(r.registers),
                None => dense.push((mt, kw, half, r.registers)),
            }
            continue;
        }
        if r.kernel.starts_with("sprnn_sw_") {
            let (n, bt, gated) = sprnn_kernels::format::parse_shared_kernel_name(&r.kernel).ok_or_else(|| format!("odd kernel name {}", r.kernel))?;
            match shared.iter_mut().find(|v| v.0 == n && v.1 == bt && v.2 == gated) {
                Some(v) => v.3 = v.3.max(r.registers),
                None => shared.push((n, bt, gated, r.registers)),
            }
            continue;
        }
        if !r.kernel.starts_with("sprnn_recurrent_") && !r.kernel.starts_with("sprnn_gated_") {
            continue;
        }
        let (n, bt, h32, gated) = sprnn_kernels::format::parse_recurrent_kernel_name(&r.kernel).ok_or_else(|| format!("odd kernel name {}", r.kernel))?;
        match variants.iter_mut().find(|v| v.0 == n && v.1 == bt && v.2 == h32 && v.3 == gated) {
            Some(v) => v.4 = v.4.max(r.registers),
            None => variants.push((n, bt, h32, gated, r.registers)),
        }
    }
    variants.sort();
    dense.sort();
    shared.sort();
    for (n, bt, h32, gated, regs) in variants {
        out.push_str(&format!("    ({n}, {bt}, {h32}, {gated}, {regs}),\n"));
    }
    out.push_str("];\n\n/// Registers per thread of the kernel variant with list length `n`, batch tile `bt`, the\n/// hidden state in f32 (`h32`) or fp16, of the gated family (`gated`: GRU, LSTM) or the RNN\n/// one, or `None` when there is no such variant.\npub fn kernel_registers(n: usize, bt: usize, h32: bool, gated: bool) -> Option<u32> {\n    KERNEL_REGISTERS.iter().find(|&&(vn, vbt, vh, vg, _)| vn == n && vbt == bt && vh == h32 && vg == gated).map(|&(_, _, _, _, r)| r)\n}\n");
    out.push_str("\n/// `(N, BT, GATED, registers per thread)` for every shared-weights variant (`N` in\n/// [`SHARED_LIST_LENGTHS`](sprnn_kernels::format::SHARED_LIST_LENGTHS), the fp16 hidden state,\n/// [`shared_kernel_name`](sprnn_kernels::format::shared_kernel_name)).\npub const SHARED_REGISTERS: &[(usize, usize, bool, u32)] = &[\n");
    for (n, bt, gated, regs) in shared {
        out.push_str(&format!("    ({n}, {bt}, {gated}, {regs}),\n"));
    }
    out.push_str("];\n\n/// Registers per thread of the shared-weights variant `(n, bt, gated)`, or `None` when there\n/// is none.\npub fn shared_kernel_registers(n: usize, bt: usize, gated: bool) -> Option<u32> {\n    SHARED_REGISTERS.iter().find(|&&(vn, vbt, vg, _)| vn == n && vbt == bt && vg == gated).map(|&(_, _, _, r)| r)\n}\n");
    out.push_str("\n/// `(MT, KW, HALF, registers per thread)` for every dense slab variant (in\n/// [`DENSE_SHAPES`](sprnn_kernels::format::DENSE_SHAPES)).\npub const DENSE_REGISTERS: &[(usize, usize, bool, u32)] = &[\n");
    for (mt, kw, half, regs) in dense {
        out.push_str(&format!("    ({mt}, {kw}, {half}, {regs}),\n"));
    }
    out.push_str("];\n\n/// Registers per thread of the dense slab variant `(mt, kw, half)`, or `None` when there is\n/// none.\npub fn dense_kernel_registers(mt: usize, kw: usize, half: bool) -> Option<u32> {\n    DENSE_REGISTERS.iter().find(|&&(m, k, h, _)| m == mt && k == kw && h == half).map(|&(_, _, _, r)| r)\n}\n");
    Ok(out)
}
