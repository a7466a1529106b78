//! Sets `unit_steps` on bare metal (see `main`), and `cortex_m_dsp` where the
//! Cortex-M DSP kernels can run: an Arm core with
//! the DSP extension. A stable rustc does not show the unstable `dsp` target
//! feature to `cfg`, so the target and the flags decide too: every ARMv7E-M
//! core (Cortex-M4, M7) has the extension unless `-C target-feature=-dsp`
//! turns it off, and an ARMv8-M Mainline build (M33, M55) that has it says
//! `+dsp`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cortex_m_dsp)");
    println!("cargo::rustc-check-cfg=cfg(unit_steps)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // Bare metal steps the integer cell unit by unit, straight from flash, with
    // no per-step buffers in the state; hosts form every row at once, which
    // vectorises better.
    let bare_metal = var("CARGO_CFG_TARGET_OS") == "none";
    if bare_metal {
        println!("cargo::rustc-cfg=unit_steps");
    }
    if var("CARGO_CFG_TARGET_ARCH") != "arm" {
        return;
    }
    // The last `+dsp` or `-dsp` in the target-feature flags wins, as in rustc.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let from_flags = flags
        .split(['\x1f', ','])
        .filter_map(|flag| match flag.rsplit('=').next() {
            Some("+dsp") => Some(true),
            Some("-dsp") => Some(false),
            _ => None,
        })
        .next_back();
    let by_target = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|feature| feature == "dsp")
        || var("TARGET").starts_with("thumbv7em");
    // The DSP kernels work unit by unit.
    if from_flags.unwrap_or(by_target) {
        println!("cargo::rustc-cfg=cortex_m_dsp");
        if !bare_metal {
            println!("cargo::rustc-cfg=unit_steps");
        }
    }
}
