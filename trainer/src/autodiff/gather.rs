//! Row lookup (`Gather` on axis 0): an embedding table, or the columns of an
//! input weight matrix for one-hot inputs (a one-hot product is a row lookup).

use serde::{Deserialize, Serialize};

use super::{zeros_like, Tape};
use crate::onnx::{Attr, Graph, Value};
use crate::ort_env::Device;
use crate::ort_ops;

/// Where a training step runs, as far as its sums over repeated ids care. Checkpoints
/// record it by variant index: add variants at the end only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// An ONNX Runtime CPU session with one intra-op thread.
    CpuOneThread,
    /// A CPU session with several threads (or as many as ONNX Runtime picks).
    CpuThreads,
    /// The CUDA execution provider.
    Cuda,
}

impl Backend {
    /// The backend of a session on `device` with `threads` intra-op threads
    /// (0: ONNX Runtime's choice).
    pub fn of(device: Device, threads: usize) -> Self {
        match (device, threads) {
            (Device::Cpu, 1) => Backend::CpuOneThread,
            (Device::Cpu, _) => Backend::CpuThreads,
            (Device::Cuda { .. }, _) => Backend::Cuda,
        }
    }

    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::CpuOneThread => "one CPU thread (--threads 1)",
            Backend::CpuThreads => "several CPU threads",
            Backend::Cuda => "CUDA",
        }
    }

    /// How rows of repeated ids are added up here. ONNX Runtime's CPU
    /// `ScatterND` add splits the ids between its threads and adds into shared
    /// rows without a lock, losing updates when two threads meet a row; on one
    /// thread it is exact, and on CUDA it adds with atomics (exact, in a varying
    /// order). On several CPU threads this crate's own operator adds in the ids'
    /// order (`crate::ort_ops`), so its sums equal one-thread `ScatterND`'s bit
    /// for bit.
    pub fn row_sum(self) -> RowSum {
        match self {
            Backend::CpuThreads => RowSum::InOrder,
            Backend::CpuOneThread | Backend::Cuda => RowSum::ScatterNd,
        }
    }

    /// Whether the recurrence's long matrix products are summed block by block,
    /// as one CPU thread sums them (`crate::bptt`): on several threads ONNX
    /// Runtime may split a product's columns between them and sum a narrower
    /// slice in longer blocks, which round otherwise. One thread needs no
    /// blocks, and CUDA sums its own way.
    pub fn sums_products_in_blocks(self) -> bool {
        self == Backend::CpuThreads
    }

    /// Whether dense layers sum each row of a batch alike, however many rows
    /// the batch or a thread's share of it holds ([`Tape::linear`]): on the
    /// CPU, where ONNX Runtime sums a single row in another order.
    ///
    /// [`Tape::linear`]: crate::autodiff::Tape::linear
    pub fn sums_rows_alike(self) -> bool {
        self != Backend::Cuda
    }
}

/// The op that adds rows into a table by id (see [`Backend::row_sum`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowSum {
    ScatterNd,
    /// `lstm_edge.AddRowsInOrder`, which CPU sessions register.
    InOrder,
}

/// `base [R, D]` with `rows [N, D]` added into its rows `row_ids [N]` (int64).
pub fn scatter_add_rows(
    g: &mut Graph,
    base: &Value,
    row_ids: &Value,
    rows: &Value,
    sum: RowSum,
) -> Value {
    match sum {
        RowSum::ScatterNd => {
            let minus_one = g.const_i64(&[1], &[-1]);
            let column = g.op("Unsqueeze", &[row_ids, &minus_one], vec![]);
            let add = Attr::Str("reduction", "add".into());
            g.op("ScatterND", &[base, &column, rows], vec![add])
        }
        RowSum::InOrder => g.op_in_domain(
            ort_ops::DOMAIN,
            ort_ops::ADD_ROWS_IN_ORDER,
            &[base, row_ids, rows],
            vec![],
        ),
    }
}

/// How the gradient of a row lookup is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatherGrad {
    /// [`scatter_add_rows`] into zeros: cost grows with the number of ids, not
    /// the vocabulary, so it suits large word vocabularies.
    ScatterAdd(RowSum),
    /// `onehot(ids)ᵀ · dy`: one `Gemm`, fast for small vocabularies (chars).
    OneHotMatMul,
}

/// The largest table (any char vocabulary) whose gradient is the one-hot
/// product on CUDA.
pub const ONE_HOT_MAX_ROWS: usize = 256;

impl GatherGrad {
    /// The method for a table of `rows` rows on `backend`. On one CPU thread,
    /// G's shape (5,120 ids into a `[50, 512]` table) trains 2-6% faster with
    /// `ScatterND` than with the one-hot product; on two, 4-11% faster with
    /// `AddRowsInOrder`, whose sums are one thread's. The CPU takes no product
    /// for tiny tables either: several threads would split its columns and sum
    /// them in other blocks than one thread (see `crate::bptt`), and its long
    /// sums (all the batch's ids) cannot be cut into fixed blocks in the graph.
    /// On CUDA char tables take the product: its sums come in a fixed order, so
    /// seeded runs repeat bit for bit.
    pub fn for_rows(rows: usize, backend: Backend) -> Self {
        if backend == Backend::Cuda && rows <= ONE_HOT_MAX_ROWS {
            GatherGrad::OneHotMatMul
        } else {
            GatherGrad::ScatterAdd(backend.row_sum())
        }
    }
}

/// A word model's embedding lookup, kept off the tape: the table's gradient is
/// then the looked-up rows' gradients, for a row-sparse update, instead of a
/// `[vocab, D]` matrix of mostly zeros.
pub struct SparseLookup {
    /// The looked-up rows (`ids.shape + [D]`): differentiate with respect to these.
    pub rows: Value,
    /// The ids.
    pub ids: Value,
}

impl SparseLookup {
    /// The table's gradient from the rows' gradient `d_rows`, as `(ids [N],
    /// rows [N, dim])`: row `ids[k]` gets `rows[k]`, repeats allowed.
    pub fn table_grad(&self, g: &mut Graph, d_rows: &Value, dim: usize) -> (Value, Value) {
        let flat_ids = g.const_i64(&[1], &[-1]);
        let ids = g.op("Reshape", &[&self.ids, &flat_ids], vec![]);
        let flat_rows = g.const_i64(&[2], &[-1, dim as i64]);
        let rows = g.op("Reshape", &[d_rows, &flat_rows], vec![]);
        (ids, rows)
    }
}

impl Tape {
    /// `table[ids]` for a [`SparseLookup`]: not recorded, so `table` gets no
    /// gradient from the tape.
    pub fn sparse_lookup(&mut self, table: &Value, ids: &Value) -> SparseLookup {
        let rows = self
            .graph()
            .op("Gather", &[table, ids], vec![Attr::Int("axis", 0)]);
        SparseLookup {
            rows,
            ids: ids.clone(),
        }
    }
}

impl Tape {
    /// `table[ids]`: `table [V, D]`, `ids` int64 of any shape, result
    /// `ids.shape + [D]`. Only `table` gets a gradient.
    pub fn gather_rows(&mut self, table: &Value, ids: &Value, method: GatherGrad) -> Value {
        let y = self
            .graph()
            .op("Gather", &[table, ids], vec![Attr::Int("axis", 0)]);
        let (table_c, ids_c) = (table.clone(), ids.clone());
        self.record(&[table], &[&y], move |g, dys, _| {
            let Some(dy) = &dys[0] else {
                return vec![None];
            };
            // Both methods work on the ids as `[N]` and their gradients as `[N, D]`.
            let minus_one = g.const_i64(&[1], &[-1]);
            let flat_ids = g.op("Reshape", &[&ids_c, &minus_one], vec![]);
            let width = g.op("Shape", &[&table_c], vec![Attr::Int("start", 1)]);
            let flat_shape = g.op("Concat", &[&minus_one, &width], vec![Attr::Int("axis", 0)]);
            let flat_dy = g.op("Reshape", &[dy, &flat_shape], vec![]);
            let grad = match method {
                GatherGrad::ScatterAdd(sum) => {
                    let zeros = zeros_like(g, &table_c);
                    scatter_add_rows(g, &zeros, &flat_ids, &flat_dy, sum)
                }
                GatherGrad::OneHotMatMul => {
                    let rows = g.op(
                        "Shape",
                        &[&table_c],
                        vec![Attr::Int("start", 0), Attr::Int("end", 1)],
                    );
                    let off_on = g.const_f32(&[2], &[0.0, 1.0]);
                    let one_hot = g.op(
                        "OneHot",
                        &[&flat_ids, &rows, &off_on],
                        vec![Attr::Int("axis", 0)],
                    );
                    g.op("Gemm", &[&one_hot, &flat_dy], vec![])
                }
            };
            vec![Some(grad)]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use super::{Backend, GatherGrad, RowSum};
    use crate::autodiff::check::{check_op, Input};
    use crate::ort_env::Device;

    fn check(method: GatherGrad) {
        // Repeated ids: their gradients must add up, not overwrite each other.
        let ids = Input::I64 {
            dims: vec![2, 3],
            data: vec![0, 2, 2, 4, 0, 2],
        };
        check_op(&[Input::random(&[5, 3], 1), ids], 2e-3, 1e-2, |t, v| {
            t.gather_rows(&v[0], &v[1], method)
        });
    }

    #[test]
    fn scatter_add_gradient_matches_finite_differences() {
        check(GatherGrad::ScatterAdd(RowSum::ScatterNd));
        check(GatherGrad::ScatterAdd(RowSum::InOrder));
    }

    #[test]
    fn one_hot_gradient_matches_finite_differences() {
        check(GatherGrad::OneHotMatMul);
    }

    /// Adds `rows` into 4 rows by `ids` on ONNX Runtime's CPU with `threads` threads.
    fn scatter_add_on_ort(ids: &[i64], rows: &[f32], width: usize, threads: usize) -> Vec<f32> {
        use crate::onnx::{Dim, Elem, Graph, OPSET};
        use crate::ort_env;
        use ort::value::Tensor;
        let row_sum = Backend::of(Device::Cpu, threads).row_sum();
        let n = ids.len() as i64;
        let mut g = Graph::new("scatter");
        let ids_v = g.input("ids", Elem::I64, &[Dim::Fixed(n)]);
        let rows_v = g.input(
            "rows",
            Elem::F32,
            &[Dim::Fixed(n), Dim::Fixed(width as i64)],
        );
        let base = g.const_f32(&[4, width as i64], &vec![0.0; 4 * width]);
        let sum = super::scatter_add_rows(&mut g, &base, &ids_v, &rows_v, row_sum);
        g.output(
            &sum,
            "sum",
            Elem::F32,
            &[Dim::Fixed(4), Dim::Fixed(width as i64)],
        );
        ort_env::init().expect("ONNX Runtime is installed");
        let bytes = g.to_model_bytes(OPSET);
        let mut session = ort_env::session_from_bytes(&bytes, Device::Cpu, threads).unwrap();
        let count = ids.len();
        let ids = Tensor::from_array(([count], ids.to_vec())).unwrap();
        let rows = Tensor::from_array(([count, width], rows.to_vec())).unwrap();
        let out = session
            .run(ort::inputs!["ids" => ids, "rows" => rows])
            .unwrap();
        out["sum"].try_extract_tensor::<f32>().unwrap().1.to_vec()
    }

    #[test]
    fn scatter_add_loses_no_rows_on_several_threads() {
        // 20,000 ids into 4 rows: threads that split the ids would meet on
        // every row (ScatterND add lost updates here).
        let (n, width) = (20_000, 64);
        let mut rng = lstm_edge_runtime::Rng::new(0x2545_F491_4F6C_DD1D);
        let mut next = || rng.next_u64();
        let ids: Vec<i64> = (0..n).map(|_| (next() % 4) as i64).collect();
        let rows: Vec<f32> = (0..n * width)
            .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        // In f32, in the ids' order: one thread's `ScatterND` and
        // `AddRowsInOrder` both add this way, so they agree bit for bit.
        let mut want = vec![0.0f32; 4 * width];
        for (k, &id) in ids.iter().enumerate() {
            for c in 0..width {
                want[id as usize * width + c] += rows[k * width + c];
            }
        }
        for threads in [1, 4, 0] {
            let first = scatter_add_on_ort(&ids, &rows, width, threads);
            assert_eq!(first, want, "{threads} threads: sums in the ids' order");
            let second = scatter_add_on_ort(&ids, &rows, width, threads);
            assert_eq!(
                first, second,
                "{threads} threads: the same sums on a second run"
            );
        }
    }

    #[test]
    fn each_backend_gets_its_lookup_gradient() {
        use super::ONE_HOT_MAX_ROWS as CHARS;
        use GatherGrad::{OneHotMatMul as Product, ScatterAdd};
        use RowSum::{InOrder, ScatterNd};
        let one = Backend::of(Device::Cpu, 1);
        let threads = Backend::of(Device::Cpu, 0);
        let cuda = Backend::of(Device::Cuda { device_id: 0 }, 0);
        assert_eq!(Backend::of(Device::Cpu, 2), threads);
        assert_eq!(GatherGrad::for_rows(6, one), ScatterAdd(ScatterNd));
        assert_eq!(GatherGrad::for_rows(6, threads), ScatterAdd(InOrder));
        assert_eq!(GatherGrad::for_rows(6, cuda), Product);
        assert_eq!(GatherGrad::for_rows(50, one), ScatterAdd(ScatterNd));
        assert_eq!(GatherGrad::for_rows(50, threads), ScatterAdd(InOrder));
        assert_eq!(GatherGrad::for_rows(CHARS, cuda), Product);
        assert_eq!(GatherGrad::for_rows(CHARS + 1, one), ScatterAdd(ScatterNd));
        assert_eq!(
            GatherGrad::for_rows(CHARS + 1, threads),
            ScatterAdd(InOrder)
        );
        assert_eq!(GatherGrad::for_rows(CHARS + 1, cuda), ScatterAdd(ScatterNd));
    }
}
