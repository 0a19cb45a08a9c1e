//! The ptxas resource report: registers, stack frame and spills of every kernel.
//!
//! ptxas comes from `$PTXAS`, the `PATH`, or PyPI's `nvidia-cuda-nvcc-cu12` (see
//! `scripts/setup.sh`). Without it the report is skipped with a visible line, unless
//! `SPRNN_REQUIRE_PTXAS` is set (CI sets it).

use std::process::Command;

/// One kernel's resources as ptxas reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub kernel: String,
    pub registers: u32,
    pub stack_frame: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
}

fn ptxas() -> Option<String> {
    if let Ok(p) = std::env::var("PTXAS") {
        if !p.is_empty() {
            return Some(p);
        }
    }
    Command::new("ptxas").arg("--version").output().ok().filter(|o| o.status.success()).map(|_| "ptxas".to_string())
}

/// Parses `ptxas -v` output.
pub fn parse(text: &str) -> Vec<Resources> {
    let mut out: Vec<Resources> = Vec::new();
    for line in text.lines() {
        if let Some(i) = line.find("Compiling entry function '") {
            let rest = &line[i + "Compiling entry function '".len()..];
            let name = rest.split('\'').next().unwrap_or("").to_string();
            out.push(Resources { kernel: name, registers: 0, stack_frame: 0, spill_stores: 0, spill_loads: 0 });
        } else if let Some(r) = out.last_mut() {
            let num_before = |key: &str| -> Option<u32> {
                let i = line.find(key)?;
                line[..i].split_whitespace().last()?.parse().ok()
            };
            if line.contains("stack frame") {
                r.stack_frame = num_before("bytes stack frame").unwrap_or(0);
                r.spill_stores = num_before("bytes spill stores").unwrap_or(0);
                r.spill_loads = num_before("bytes spill loads").unwrap_or(0);
            }
            if line.contains("Used") && line.contains("registers") {
                let i = line.find("Used").unwrap();
                r.registers = line[i + 4..].split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            }
        }
    }
    out
}

/// Runs ptxas on `ptx` for `arch`, prints the table, fails on any local-memory use.
pub fn report(arch: &str, ptx: &str) -> Result<Vec<Resources>, String> {
    let Some(ptxas) = ptxas() else {
        if std::env::var_os("SPRNN_REQUIRE_PTXAS").is_some() {
            return Err("ptxas not found (set PTXAS or run scripts/setup.sh)".into());
        }
        println!("ptxas report for {arch}: skipped: ptxas not found (set PTXAS or run scripts/setup.sh)");
        return Ok(Vec::new());
    };
    let dir = crate::workspace_root().join("target/ptx");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join(format!("report_{arch}.ptx"));
    std::fs::write(&file, ptx).map_err(|e| e.to_string())?;
    let out = crate::run(Command::new(&ptxas).arg(format!("-arch={arch}")).arg("-v").arg(&file).arg("-o").arg(dir.join(format!("report_{arch}.cubin"))))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let rows = parse(&text);
    println!("ptxas -arch={arch} -v:");
    println!("  {:<34} {:>5} {:>6} {:>7} {:>7}", "kernel", "regs", "stack", "spill-st", "spill-ld");
    let mut bad = Vec::new();
    for r in &rows {
        println!("  {:<34} {:>5} {:>6} {:>7} {:>7}", r.kernel, r.registers, r.stack_frame, r.spill_stores, r.spill_loads);
        if r.stack_frame > 0 || r.spill_stores > 0 || r.spill_loads > 0 {
            bad.push(r.kernel.clone());
        }
    }
    if rows.is_empty() {
        return Err(format!("ptxas reported no kernels:\n{text}"));
    }
    if !bad.is_empty() {
        return Err(format!("kernels using local memory on {arch}: {}", bad.join(", ")));
    }
    Ok(rows)
}
