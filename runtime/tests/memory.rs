//! Memory: the whole per-stream RAM of the G shape (LSTM, H = 128, V = 50).

use lstm_edge_runtime::numeric::{Int, F32};
use lstm_edge_runtime::{Logits, State};

#[test]
fn g_shape_state_and_scratch_fit_in_2_kib() {
    let int = size_of::<State<Int, 128>>() + size_of::<Logits<Int, 50>>();
    let f32 = size_of::<State<F32, 128>>() + size_of::<Logits<F32, 50>>();
    println!("G shape (LSTM, H = 128, V = 50): state + scratch = {int} bytes (integer), {f32} bytes (f32)");
    assert!(int <= 2048, "integer path needs {int} bytes");
    assert!(f32 <= 2048, "f32 path needs {f32} bytes");
}
