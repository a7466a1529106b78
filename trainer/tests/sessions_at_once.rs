//! CPU sessions created at once, as a process's first: each registers the
//! trainer's operator domain with ONNX Runtime, whose table of domains must
//! not be written by two of them together (a test binary of its own, so that
//! no earlier session has registered it).

use std::sync::{Arc, Barrier};

use lstm_edge_trainer::onnx::{Dim, Elem, Graph, OPSET};
use lstm_edge_trainer::ort_env::{self, Device};
use lstm_edge_trainer::ort_ops::{ADD_ROWS_IN_ORDER, DOMAIN};

#[test]
fn the_first_cpu_sessions_can_be_created_at_once() {
    let mut g = Graph::new("add_rows");
    let ids = g.input("ids", Elem::I64, &[Dim::Fixed(2)]);
    let rows = g.input("rows", Elem::F32, &[Dim::Fixed(2), Dim::Fixed(3)]);
    let base = g.const_f32(&[4, 3], &[0.0; 12]);
    let sum = g.op_in_domain(DOMAIN, ADD_ROWS_IN_ORDER, &[&base, &ids, &rows], vec![]);
    g.output(&sum, "sum", Elem::F32, &[Dim::Fixed(4), Dim::Fixed(3)]);
    let model = Arc::new(g.to_model_bytes(OPSET));
    ort_env::init().expect("ONNX Runtime is installed");
    let threads = 8;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (model, start) = (Arc::clone(&model), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                ort_env::session_from_bytes(&model, Device::Cpu, 1).map(|_| ())
            })
        })
        .collect();
    for (k, handle) in handles.into_iter().enumerate() {
        let created = handle.join().expect("the thread ran");
        assert!(created.is_ok(), "session {k}: {:#}", created.unwrap_err());
    }
}
