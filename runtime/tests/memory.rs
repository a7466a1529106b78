//! Memory: the whole per-stream RAM of the G shape (LSTM, H = 128, V = 50):
//! the caller's state, the logit buffer, and the step's stack scratch (the
//! Cortex-M integer kernel reads a pair-ordered copy of h; other paths need none).
//! Hosts keep per-step row buffers in the state (`Numeric::Scratch`); on
//! Cortex-M that type is `()`, so it is left out of the device figure.

use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Logits, State};

#[test]
fn g_shape_state_and_scratch_fit_in_2_kib() {
    let kernel_copy = 128 * size_of::<i16>();
    let host_only = size_of::<<Int as Numeric>::Scratch>();
    let int = size_of::<State<Int, 128>>() - host_only + size_of::<Logits<Int, 50>>() + kernel_copy;
    let f32 = size_of::<State<F32, 128>>() + size_of::<Logits<F32, 50>>();
    println!(
        "G shape (LSTM, H = 128, V = 50): state + logits + step scratch = {int} bytes (integer, \
         incl. {kernel_copy} bytes of Cortex-M kernel scratch), {f32} bytes (f32)"
    );
    assert!(int <= 2048, "integer path needs {int} bytes");
    assert!(f32 <= 2048, "f32 path needs {f32} bytes");
}
