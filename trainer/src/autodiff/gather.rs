//! Row lookup (`Gather` on axis 0): an embedding table, or the columns of an
//! input weight matrix for one-hot inputs (a one-hot product is a row lookup).

use super::{zeros_like, Tape};
use crate::onnx::{Attr, Value};

/// How the gradient of a row lookup is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatherGrad {
    /// `ScatterND` with `reduction = "add"` into zeros: cost grows with the
    /// number of ids, not the vocabulary, so it suits large word vocabularies.
    ScatterAdd,
    /// `onehot(ids)ᵀ · dy`: one `Gemm`, fast for small vocabularies (chars).
    OneHotMatMul,
}

/// The largest table whose gradient is a one-hot product when sums must come
/// in a fixed order.
pub const ONE_HOT_MAX_ROWS: usize = 256;

impl GatherGrad {
    /// The method for a table of `rows` rows. On ORT 1.31 CPU, G's shape
    /// (5,120 ids into a `[50, 512]` table) trains 2-6% faster with `ScatterND`
    /// than with the one-hot product, which grows with the rows; so the product
    /// is kept for tiny tables. `ordered_sums` asks for the product up to
    /// [`ONE_HOT_MAX_ROWS`] rows (any char vocabulary): CUDA's `ScatterND` adds
    /// with atomics, in an order that varies from run to run.
    pub fn for_rows(rows: usize, ordered_sums: bool) -> Self {
        if rows <= 32 || (ordered_sums && rows <= ONE_HOT_MAX_ROWS) {
            GatherGrad::OneHotMatMul
        } else {
            GatherGrad::ScatterAdd
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
            let grad = match method {
                GatherGrad::ScatterAdd => {
                    let zeros = zeros_like(g, &table_c);
                    let minus_one = g.const_i64(&[1], &[-1]);
                    let index = g.op("Unsqueeze", &[&ids_c, &minus_one], vec![]);
                    g.op(
                        "ScatterND",
                        &[&zeros, &index, dy],
                        vec![Attr::Str("reduction", "add".into())],
                    )
                }
                GatherGrad::OneHotMatMul => {
                    let rows = g.op(
                        "Shape",
                        &[&table_c],
                        vec![Attr::Int("start", 0), Attr::Int("end", 1)],
                    );
                    let width = g.op("Shape", &[&table_c], vec![Attr::Int("start", 1)]);
                    let minus_one = g.const_i64(&[1], &[-1]);
                    let flat_ids = g.op("Reshape", &[&ids_c, &minus_one], vec![]);
                    let off_on = g.const_f32(&[2], &[0.0, 1.0]);
                    let one_hot = g.op("OneHot", &[&flat_ids, &rows, &off_on], vec![]);
                    let flat_shape =
                        g.op("Concat", &[&minus_one, &width], vec![Attr::Int("axis", 0)]);
                    let flat_dy = g.op("Reshape", &[dy, &flat_shape], vec![]);
                    g.op("Gemm", &[&one_hot, &flat_dy], vec![Attr::Int("transA", 1)])
                }
            };
            vec![Some(grad)]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use super::GatherGrad;
    use crate::autodiff::check::{check_op, Input};

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
        check(GatherGrad::ScatterAdd);
    }

    #[test]
    fn one_hot_gradient_matches_finite_differences() {
        check(GatherGrad::OneHotMatMul);
    }

    #[test]
    fn ordered_sums_take_the_product_for_char_tables_only() {
        use super::ONE_HOT_MAX_ROWS;
        assert_eq!(GatherGrad::for_rows(32, false), GatherGrad::OneHotMatMul);
        assert_eq!(GatherGrad::for_rows(50, false), GatherGrad::ScatterAdd);
        assert_eq!(GatherGrad::for_rows(50, true), GatherGrad::OneHotMatMul);
        let chars = ONE_HOT_MAX_ROWS;
        assert_eq!(GatherGrad::for_rows(chars, true), GatherGrad::OneHotMatMul);
        assert_eq!(
            GatherGrad::for_rows(chars + 1, true),
            GatherGrad::ScatterAdd
        );
    }
}
