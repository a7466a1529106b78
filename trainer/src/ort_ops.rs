//! The operator this crate adds to ONNX Runtime's CPU sessions (see
//! [`crate::ort_env::session_from_bytes`]), for training graphs only: exported
//! models hold standard operators alone.
//!
//! `lstm_edge.AddRowsInOrder(base [R, D], ids [N], rows [N, D]) -> [R, D]` adds
//! row `k` of `rows` into row `ids[k]` of a copy of `base`, for `k` in order: the
//! sums of one thread's `ScatterND` add, bit for bit, on any number of threads.
//! ORT 1.31's CPU `ScatterND` add loses updates on several threads, and its
//! `ScatterElements` add is exact but works out each element's offset alone: W's
//! 6,400 rows of 300 took it about 6 ms, and this operator about 1.2 ms, inside
//! W's training step on two threads.

use ort::operator::{
    BoxedKernel, ComputeContext, KernelContext, Operator, OperatorDomain, OperatorInput,
    OperatorOutput,
};
use ort::value::TensorElementType;

/// The domain of this crate's operators (version 1, as graphs import it).
pub const DOMAIN: &str = "lstm_edge";
/// The in-order row sum's name in [`DOMAIN`].
pub const ADD_ROWS_IN_ORDER: &str = "AddRowsInOrder";

/// The domain with its operators, to register with a session.
pub fn domain() -> ort::Result<OperatorDomain> {
    OperatorDomain::new(DOMAIN)?.add(AddRowsInOrder)
}

/// Adds row `k` of `rows` (`ids.len()` rows of `width`) into row `ids[k]` of
/// `table`, in the order of `ids`. An id outside the table is an error, and the
/// table is then left part-summed.
pub fn add_rows_in_order(
    table: &mut [f32],
    width: usize,
    ids: &[i64],
    rows: &[f32],
) -> Result<(), String> {
    if width == 0 {
        return Ok(());
    }
    if rows.len() != ids.len() * width {
        return Err(format!(
            "{ADD_ROWS_IN_ORDER}: {} ids for {} values of rows {width} wide",
            ids.len(),
            rows.len()
        ));
    }
    let table_rows = table.len() / width;
    for (&id, row) in ids.iter().zip(rows.chunks_exact(width)) {
        let start = usize::try_from(id)
            .ok()
            .filter(|&r| r < table_rows)
            .map(|r| r * width)
            .ok_or_else(|| {
                format!("{ADD_ROWS_IN_ORDER}: id {id} outside a table of {table_rows} rows")
            })?;
        for (sum, value) in table[start..start + width].iter_mut().zip(row) {
            *sum += value;
        }
    }
    Ok(())
}

struct AddRowsInOrder;

impl Operator for AddRowsInOrder {
    type Kernel<'attr> = BoxedKernel<'attr>;

    fn name(&self) -> &str {
        ADD_ROWS_IN_ORDER
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        [
            OperatorInput::required(TensorElementType::Float32),
            OperatorInput::required(TensorElementType::Int64),
            OperatorInput::required(TensorElementType::Float32),
        ]
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        [OperatorOutput::required(TensorElementType::Float32)]
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<Self::Kernel<'attr>> {
        Ok(Box::new(compute))
    }
}

fn compute(ctx: &ComputeContext) -> ort::Result<()> {
    let input = |index: usize| {
        ctx.input(index)?
            .ok_or_else(|| ort::Error::new(format!("{ADD_ROWS_IN_ORDER}: no input {index}")))
    };
    let (base, ids, rows) = (input(0)?, input(1)?, input(2)?);
    let (shape, base) = base.try_extract_tensor::<f32>()?;
    let (_, ids) = ids.try_extract_tensor::<i64>()?;
    let (_, rows) = rows.try_extract_tensor::<f32>()?;
    let width = match **shape {
        [_, width] => usize::try_from(width).unwrap_or(0),
        _ => {
            return Err(ort::Error::new(format!(
                "{ADD_ROWS_IN_ORDER}: the table must have two axes, not {}",
                shape.len()
            )))
        }
    };
    let mut out = ctx
        .output(0, shape.to_vec())?
        .ok_or_else(|| ort::Error::new(format!("{ADD_ROWS_IN_ORDER}: no output")))?;
    let (_, table) = out.try_extract_tensor_mut::<f32>()?;
    table.copy_from_slice(base);
    add_rows_in_order(table, width, ids, rows).map_err(ort::Error::new)
}

#[cfg(test)]
mod tests {
    use super::{add_rows_in_order, ADD_ROWS_IN_ORDER, DOMAIN};
    use crate::onnx::{Dim, Elem, Graph, OPSET};
    use crate::ort_env::{self, Device};
    use ort::value::Tensor;

    /// Runs the operator in an ONNX Runtime session on `threads` threads: a
    /// `[3, 2]` table of ones plus `ids.len()` rows of 1..
    fn run_in_session(ids: &[i64], threads: usize) -> ort::Result<Vec<f32>> {
        let n = ids.len() as i64;
        let mut g = Graph::new("add_rows");
        let ids_v = g.input("ids", Elem::I64, &[Dim::Fixed(n)]);
        let rows_v = g.input("rows", Elem::F32, &[Dim::Fixed(n), Dim::Fixed(2)]);
        let base = g.const_f32(&[3, 2], &[1.0; 6]);
        let sum = g.op_in_domain(DOMAIN, ADD_ROWS_IN_ORDER, &[&base, &ids_v, &rows_v], vec![]);
        g.output(&sum, "sum", Elem::F32, &[Dim::Fixed(3), Dim::Fixed(2)]);
        ort_env::init().expect("ONNX Runtime is installed");
        let bytes = g.to_model_bytes(OPSET);
        let mut session = ort_env::session_from_bytes(&bytes, Device::Cpu, threads).unwrap();
        let count = ids.len();
        let rows: Vec<f32> = (1..=2 * count).map(|v| v as f32).collect();
        let ids = Tensor::from_array(([count], ids.to_vec()))?;
        let rows = Tensor::from_array(([count, 2], rows))?;
        let out = session.run(ort::inputs!["ids" => ids, "rows" => rows])?;
        Ok(out["sum"].try_extract_tensor::<f32>()?.1.to_vec())
    }

    #[test]
    fn cpu_sessions_run_the_operator_and_report_its_errors() {
        for threads in [1, 2] {
            let sum = run_in_session(&[2, 0, 2], threads).unwrap();
            assert_eq!(sum, [4.0, 5.0, 1.0, 1.0, 7.0, 9.0], "{threads} threads");
            let error = run_in_session(&[0, 3], threads).unwrap_err().to_string();
            assert!(error.contains("id 3 outside a table of 3 rows"), "{error}");
        }
    }

    #[test]
    fn rows_add_in_the_ids_order() {
        // Row 1, first column: (1e8 + 1) - 1e8 is 0 in f32; 1e8 - 1e8 + 1 would be 1.
        let mut table = vec![0.5, 0.0, 0.0, 0.0];
        let ids = [1, 0, 1, 1];
        let rows = [1e8, 1.0, 2.0, 2.0, 1.0, 1.0, -1e8, -1.0];
        add_rows_in_order(&mut table, 2, &ids, &rows).unwrap();
        assert_eq!(table, [2.5, 2.0, 0.0, 1.0]);
    }

    #[test]
    fn an_id_outside_the_table_is_an_error() {
        let mut table = vec![0.0; 4];
        for id in [2, -1] {
            let error = add_rows_in_order(&mut table, 2, &[0, id], &[1.0; 4]).unwrap_err();
            assert!(
                error.contains(&format!("id {id} outside a table of 2 rows")),
                "{error}"
            );
        }
        let error = add_rows_in_order(&mut table, 2, &[0], &[1.0; 4]).unwrap_err();
        assert!(error.contains("1 ids for 4 values"), "{error}");
    }
}
