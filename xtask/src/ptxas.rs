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

/// Parses `ptxas -v` output: one row per entry function. The resource lines belong to the
/// function named by the `Function properties for NAME` line before them — ptxas interleaves
/// the properties of called (non-entry) functions, e.g. core's panic helpers, after an entry's,
/// and those must not overwrite the entry's figures.
pub fn parse(text: &str) -> Vec<Resources> {
    let mut out: Vec<Resources> = Vec::new();
    // The function the following "stack frame" / "Used" lines describe.
    let mut current: Option<String> = None;
    let num_before = |line: &str, key: &str| -> Option<u32> {
        let i = line.find(key)?;
        line[..i].split_whitespace().last()?.parse().ok()
    };
    for line in text.lines() {
        if let Some(i) = line.find("Compiling entry function '") {
            let rest = &line[i + "Compiling entry function '".len()..];
            let name = rest.split('\'').next().unwrap_or("").to_string();
            out.push(Resources { kernel: name.clone(), registers: 0, stack_frame: 0, spill_stores: 0, spill_loads: 0 });
            current = Some(name);
        } else if let Some(i) = line.find("Function properties for ") {
            current = line[i + "Function properties for ".len()..].split_whitespace().next().map(str::to_string);
        } else if let Some(r) = out.last_mut().filter(|r| current.as_deref() == Some(r.kernel.as_str())) {
            if line.contains("stack frame") {
                r.stack_frame = num_before(line, "bytes stack frame").unwrap_or(0);
                r.spill_stores = num_before(line, "bytes spill stores").unwrap_or(0);
                r.spill_loads = num_before(line, "bytes spill loads").unwrap_or(0);
            }
            if let Some(i) = line.find("Used ").filter(|_| line.contains("registers")) {
                r.registers = line[i + 5..].split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
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
    println!("  {:<34} {:>5} {:>6} {:>7} {:>7} {:>9}", "kernel", "regs", "stack", "spill-st", "spill-ld", "non-weight");
    let mut bad = Vec::new();
    for r in &rows {
        let other = non_weight_registers(r).map_or_else(|| "-".to_string(), |n| n.to_string());
        println!("  {:<34} {:>5} {:>6} {:>7} {:>7} {:>9}", r.kernel, r.registers, r.stack_frame, r.spill_stores, r.spill_loads, other);
        // The phase-clock probe (a measurement, never run by a layer) may spill: its reloads sit
        // right after its own clock reads, outside the phases it times.
        let probe = r.kernel.starts_with(sprnn_kernels::format::CLOCKS_PREFIX);
        if !probe && (r.stack_frame > 0 || r.spill_stores > 0 || r.spill_loads > 0) {
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

/// Registers a sparse-list kernel (register-only, shared-weights or cluster) spends on anything
/// but its `N` weight words: `registers − N`; `None` for the other kernels.
pub fn non_weight_registers(r: &Resources) -> Option<u32> {
    use sprnn_kernels::format::{parse_cluster_kernel_name, parse_recurrent_kernel_name, parse_shared_kernel_name};
    let n = parse_recurrent_kernel_name(&r.kernel)
        .map(|(n, ..)| n)
        .or_else(|| parse_shared_kernel_name(&r.kernel).map(|(n, ..)| n))
        .or_else(|| parse_cluster_kernel_name(&r.kernel).map(|(n, ..)| n))?;
    Some(r.registers.saturating_sub(n as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_weight_registers_subtract_the_list_length() {
        let row = |kernel: &str, registers| Resources { kernel: kernel.into(), registers, stack_frame: 0, spill_stores: 0, spill_loads: 0 };
        assert_eq!(non_weight_registers(&row("sprnn_recurrent_n24_bt4_h16", 96)), Some(72));
        assert_eq!(non_weight_registers(&row("sprnn_sw_gated_n48_bt4", 128)), Some(80));
        assert_eq!(non_weight_registers(&row("sprnn_cluster_n64_bt1", 120)), Some(56));
        assert_eq!(non_weight_registers(&row("sprnn_projection_csr", 32)), None);
    }

    /// ptxas 12.9's order: an entry's properties, then those of a called function (a panic
    /// helper with no frame), then the next entry.
    const SAMPLE: &str = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'sprnn_recurrent_n8_bt1' for 'sm_90'
ptxas info    : Function properties for sprnn_recurrent_n8_bt1
    352 bytes stack frame, 372 bytes spill stores, 756 bytes spill loads
ptxas info    : Used 80 registers, used 1 barriers, 352 bytes cumulative stack size
ptxas info    : Compile time = 119.120 ms
ptxas info    : Function properties for _RNvNtCskadkSMZu6gz_4core9panicking9panic_fmt
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Compiling entry function 'sprnn_smoke' for 'sm_90'
ptxas info    : Function properties for sprnn_smoke
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 21 registers, used 1 barriers
";

    #[test]
    fn a_called_function_does_not_overwrite_the_entry_before_it() {
        let rows = parse(SAMPLE);
        assert_eq!(
            rows,
            vec![
                Resources { kernel: "sprnn_recurrent_n8_bt1".into(), registers: 80, stack_frame: 352, spill_stores: 372, spill_loads: 756 },
                Resources { kernel: "sprnn_smoke".into(), registers: 21, stack_frame: 0, spill_stores: 0, spill_loads: 0 },
            ]
        );
    }
}
