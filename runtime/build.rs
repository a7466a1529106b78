//! Sets `cortex_m_dsp` where the Cortex-M DSP kernels can run: an Arm core with
//! the DSP extension. A stable rustc does not show the unstable `dsp` target
//! feature to `cfg`, so the target decides too: every ARMv7E-M core (Cortex-M4,
//! M7) has the extension, and an ARMv8-M Mainline build (M33, M55) that enables
//! it names `+dsp` in its flags.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cortex_m_dsp)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ARCH") != "arm" {
        return;
    }
    let features = var("CARGO_CFG_TARGET_FEATURE");
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let dsp = features.split(',').any(|f| f == "dsp")
        || var("TARGET").starts_with("thumbv7em")
        || flags.contains("+dsp");
    if dsp {
        println!("cargo::rustc-cfg=cortex_m_dsp");
    }
}
