//! `sprnn info`: the GPU's properties and its on-chip capacity, or the presets without a device.

use clap::Args;
use serde_json::json;
use sprnn::layout::DeviceInfo;
use sprnn::{Error, Gpu};

use crate::{no_device_message, CliResult};

/// Arguments of `sprnn info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Device ordinal.
    #[arg(long, default_value_t = 0)]
    pub device: u32,
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    pub json: bool,
}

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// On-chip capacity of a device in bytes: `SMs × (register file + shared memory)`.
pub fn on_chip_bytes(d: &DeviceInfo) -> usize {
    d.sm_count * (d.registers_per_sm * 4 + d.shared_per_sm)
}

fn describe(d: &DeviceInfo) -> serde_json::Value {
    json!({
        "name": d.name,
        "compute_capability": format!("{}.{}", d.compute_capability.0, d.compute_capability.1),
        "sms": d.sm_count,
        "registers_per_sm": d.registers_per_sm,
        "register_file_bytes_per_sm": d.registers_per_sm * 4,
        "shared_bytes_per_sm": d.shared_per_sm,
        "shared_bytes_per_cta_optin": d.shared_per_block_optin,
        "l2_bytes": d.l2_bytes,
        "on_chip_bytes": on_chip_bytes(d),
    })
}

fn print_device(d: &DeviceInfo, indent: &str) {
    let (rf, sm) = (d.registers_per_sm * 4, d.shared_per_sm);
    println!("{indent}compute capability   {}.{}", d.compute_capability.0, d.compute_capability.1);
    println!("{indent}SMs                  {}", d.sm_count);
    println!("{indent}registers per SM     {} ({:.0} KiB)", d.registers_per_sm, rf as f64 / KIB);
    println!(
        "{indent}shared memory per SM {sm} bytes ({:.0} KiB; {:.0} KiB opt-in per CTA)",
        sm as f64 / KIB,
        d.shared_per_block_optin as f64 / KIB
    );
    println!("{indent}L2                   {:.0} MiB", d.l2_bytes as f64 / MIB);
    println!(
        "{indent}on-chip capacity     {:.1} MiB = {} SMs x ({:.0} KiB registers + {:.0} KiB shared); the register file holds at most {:.1} M packed nonzeros",
        on_chip_bytes(d) as f64 / MIB,
        d.sm_count,
        rf as f64 / KIB,
        sm as f64 / KIB,
        (d.sm_count * d.registers_per_sm) as f64 / 1e6
    );
}

/// Runs `sprnn info`.
pub fn main(args: &InfoArgs) -> CliResult {
    match Gpu::new(args.device) {
        Ok(gpu) => {
            let d = gpu.info();
            let memory = gpu.memory().ok();
            if args.json {
                let mut v = describe(d);
                v["device"] = json!(args.device);
                v["ptx"] = json!(gpu.arch());
                if let Some((free, total)) = memory {
                    v["memory_free_bytes"] = json!(free);
                    v["memory_total_bytes"] = json!(total);
                }
                println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
            } else {
                println!("GPU {}: {} (PTX {} loaded)", args.device, d.name, gpu.arch());
                print_device(d, "  ");
                if let Some((free, total)) = memory {
                    println!("  memory               {:.1} GiB free of {:.1} GiB", free as f64 / MIB / 1024.0, total as f64 / MIB / 1024.0);
                }
            }
            Ok(())
        }
        Err(e @ (Error::NoDevice { .. } | Error::NoDriver { .. })) => {
            let presets = [DeviceInfo::h200(), DeviceInfo::a100()];
            if args.json {
                let v = json!({
                    "device": null,
                    "no_device": no_device_message(&e),
                    "presets": presets.iter().map(describe).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
            } else {
                println!("{}", no_device_message(&e));
                println!("presets (what `sprnn plan --device h200|a100` plans for):");
                for d in &presets {
                    println!("  {}", d.name);
                    print_device(d, "    ");
                }
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
