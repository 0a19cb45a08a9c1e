//! `cargo xtask ptx-diff REV [--arch sm_90|sm_80] [--all]`: which kernel entry points of the
//! committed PTX (`host/kernels/*.ptx.z` in the working tree) differ from those at git revision
//! `REV`, after normalisation.
//!
//! Why: a kernel change measured on the GPU is worth keeping only in the code shape that was
//! measured, and small source changes elsewhere in a kernel (even in a branch that never runs
//! for a family) move ptxas's schedule of the step loop — by ±0.08 µs at the headline layer in
//! `bench/RESULTS.md`. Before a kept change is merged, this says which entry points are the
//! measured ones and which are not.
//!
//! Normalisation: virtual register numbers (`%r123` → `%r`), basic-block label numbers and every
//! `//` comment (block names, call-sequence numbers, `implicit-def` notes) are dropped, so that
//! two entry points compare equal when they differ only in numbering. Printed: per family (the
//! name up to its list length, e.g. `sprnn_gated`) how many entry points are identical and
//! which differ (all with `--all`, else the first eight), and the entry points in only one side.

use std::collections::BTreeMap;
use std::process::Command;

use crate::{run, workspace_root};

/// Runs the task with its arguments.
pub fn ptx_diff(args: &[&str]) -> Result<(), String> {
    let mut rev = None;
    let mut arch = "sm_90".to_string();
    let mut all = false;
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--arch" => arch = it.next().ok_or("--arch needs a value (sm_90 or sm_80)")?.to_string(),
            "--all" => all = true,
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if rev.is_none() => rev = Some(a.to_string()),
            _ => return Err(format!("one revision only (got {a} too)")),
        }
    }
    let rev = rev.ok_or("usage: cargo xtask ptx-diff REV [--arch sm_90|sm_80] [--all]")?;
    let path = crate::ptx::ptx_path(&arch);
    let rel = path.strip_prefix(workspace_root()).map_err(|_| "PTX path outside the workspace")?.to_string_lossy().into_owned();
    let now = crate::ptx::inflate(&std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?)
        .ok_or_else(|| format!("{} does not inflate", path.display()))?;
    let old_bytes = run(Command::new("git").arg("-C").arg(workspace_root()).arg("show").arg(format!("{rev}:{rel}")))?.stdout;
    let old = crate::ptx::inflate(&old_bytes).ok_or_else(|| format!("{rev}:{rel} does not inflate"))?;
    print!("{}", compare(&entries(&old), &entries(&now), &rev, all));
    Ok(())
}

/// The entry points of a PTX module, each normalised (see the module docs), by name.
fn entries(ptx: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = ptx;
    while let Some(at) = rest.find(".entry ") {
        let body = &rest[at..];
        let name: String = body[".entry ".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let end = body.find("\n}\n").map_or(body.len(), |e| e + 3);
        out.insert(name, normalise(&body[..end]));
        rest = &body[end..];
    }
    out
}

/// One entry point's text without register numbers, label numbers and comments.
fn normalise(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.lines() {
        let code = line.split("//").next().unwrap_or("").trim_end();
        if code.trim().is_empty() {
            continue;
        }
        let mut chars = code.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' || c == '$' {
                // A register (`%rd12`) or a label (`$L__BB68_217`): keep the letters, drop the
                // numbers (and a label's underscores between them).
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphabetic() || (c == '$' && n == '_' && !out.ends_with("BB")) {
                        out.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                while chars.peek().is_some_and(|n| n.is_ascii_digit() || (c == '$' && *n == '_')) {
                    chars.next();
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The family of an entry point: its name up to the list length (`sprnn_gated_n16_bt4_h16` →
/// `sprnn_gated`), or the whole name.
fn family(name: &str) -> &str {
    name.find("_n").filter(|&i| name[i + 2..].starts_with(|c: char| c.is_ascii_digit())).map_or(name, |i| &name[..i])
}

/// The report of `old` (at `rev`) against `now`.
fn compare(old: &BTreeMap<String, String>, now: &BTreeMap<String, String>, rev: &str, all: bool) -> String {
    let mut fams: BTreeMap<&str, (usize, Vec<&str>)> = BTreeMap::new();
    let mut only_now = Vec::new();
    for (name, body) in now {
        let f = fams.entry(family(name)).or_default();
        match old.get(name) {
            Some(b) if b == body => f.0 += 1,
            Some(_) => f.1.push(name),
            None => only_now.push(name.as_str()),
        }
    }
    let only_old: Vec<&str> = old.keys().filter(|n| !now.contains_key(*n)).map(String::as_str).collect();
    let mut out = format!("entry points of the committed PTX against {rev} (normalised):\n");
    for (f, (same, diff)) in &fams {
        let shown: Vec<&str> = if all { diff.clone() } else { diff.iter().take(8).copied().collect() };
        let more = if diff.len() > shown.len() { format!(", … {} more", diff.len() - shown.len()) } else { String::new() };
        out += &format!("  {f}: {same} identical, {} differ{}{more}\n", diff.len(), if shown.is_empty() { String::new() } else { format!(": {}", shown.join(", ")) });
    }
    if !only_now.is_empty() {
        out += &format!("  only in the working tree: {}\n", only_now.join(", "));
    }
    if !only_old.is_empty() {
        out += &format!("  only in {rev}: {}\n", only_old.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = ".visible .entry sprnn_gated_n16_bt4_h16(\n{\n\t.reg .b32 \t%r<1075>;\n\tmov.u32 \t%r12, %tid.x; // a note\n$L__BB68_217:\t// %bb.3\n\t@%p129 bra \t$L__BB68_45;\n}\n.visible .entry sprnn_math(\n{\n\tret;\n}\n";

    #[test]
    fn numbering_and_comments_do_not_count() {
        let b = A.replace("%r12", "%r13").replace("BB68_45", "BB70_46").replace("// a note", "").replace("%p129", "%p130");
        let (ea, eb) = (entries(A), entries(&b));
        assert_eq!(ea.len(), 2);
        assert_eq!(ea, eb);
        assert!(ea["sprnn_gated_n16_bt4_h16"].contains("mov.u32 \t%r, %tid.x;"), "{}", ea["sprnn_gated_n16_bt4_h16"]);
        assert!(ea["sprnn_gated_n16_bt4_h16"].contains("bra \t$L__BB;"));
    }

    #[test]
    fn a_changed_instruction_counts_and_is_named() {
        let b = A.replace("mov.u32 \t%r12, %tid.x;", "mov.u32 \t%r12, %ctaid.x;");
        let report = compare(&entries(A), &entries(&b), "REV", false);
        assert!(report.contains("sprnn_gated: 0 identical, 1 differ: sprnn_gated_n16_bt4_h16"), "{report}");
        assert!(report.contains("sprnn_math: 1 identical, 0 differ"), "{report}");
        let extra = format!("{b}.visible .entry sprnn_new(\n{{\n\tret;\n}}\n");
        assert!(compare(&entries(A), &entries(&extra), "REV", false).contains("only in the working tree: sprnn_new"));
    }

    #[test]
    fn families_end_at_the_list_length() {
        assert_eq!(family("sprnn_gated_n16_bt4_h16"), "sprnn_gated");
        assert_eq!(family("sprnn_sw_recurrent_n32_bt1"), "sprnn_sw_recurrent");
        assert_eq!(family("sprnn_concat_directions"), "sprnn_concat_directions");
        assert_eq!(family("sprnn_projection_dense_n128_s2"), "sprnn_projection_dense");
    }
}
