//! Memory: the whole per-stream RAM of the G shape (LSTM, H = 128, V = 50):
//! the caller's state, the logit buffer, and the step's stack scratch (the
//! Cortex-M integer kernel reads a pair-ordered copy of h; other paths need none).
//! Hosts keep per-step row buffers in the state (`Numeric::Scratch`, on both
//! paths), sized by the state's `H`; on bare metal that type is `()`, so it is
//! left out of the device figure.

use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Logits, State};

#[test]
fn g_shape_state_and_scratch_fit_in_2_kib() {
    let kernel_copy = 128 * size_of::<i16>();
    let host_only = size_of::<<Int as Numeric>::Scratch<128>>();
    let int = size_of::<State<Int, 128>>() - host_only + size_of::<Logits<Int, 50>>() + kernel_copy;
    let f32_host_only = size_of::<<F32 as Numeric>::Scratch<128>>();
    let f32 = size_of::<State<F32, 128>>() - f32_host_only + size_of::<Logits<F32, 50>>();
    println!(
        "G shape (LSTM, H = 128, V = 50): state + logits + step scratch = {int} bytes (integer, \
         incl. {kernel_copy} bytes of Cortex-M kernel scratch), {f32} bytes (f32)"
    );
    assert!(int <= 2048, "integer path needs {int} bytes");
    assert!(f32 <= 2048, "f32 path needs {f32} bytes");
}

#[test]
fn the_row_buffers_grow_with_the_states_hidden_size_not_the_runtimes_limit() {
    // Hosts keep four rows a unit (bare-metal builds step unit by unit and keep
    // none); a small model's state stays small there too.
    let small = size_of::<State<Int, 32>>();
    println!("State<Int, 32>: {small} bytes on this target");
    assert!(small <= 3 * 1024, "State<Int, 32> takes {small} bytes");
    assert!(size_of::<State<Int, 256>>() >= 7 * small);
    let small = size_of::<State<F32, 32>>();
    println!("State<F32, 32>: {small} bytes on this target");
    assert!(small <= 2 * 1024, "State<F32, 32> takes {small} bytes");
    assert!(size_of::<State<F32, 256>>() >= 7 * small);
}
