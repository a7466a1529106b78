//! NumPy `.npy` files (format 1.0), so the exact ids and targets a run trained on can be
//! loaded elsewhere (`numpy.load`) and trained by another framework for comparison.

use anyhow::{ensure, Context, Result};

/// Element types written here, with their NumPy `descr`.
pub trait NpyElement: Copy {
    const DESCR: &'static str;
    fn write_le(self, out: &mut Vec<u8>);
}

impl NpyElement for u16 {
    const DESCR: &'static str = "<u2";
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";
/// NumPy pads the header so that the data starts on this boundary.
const ALIGN: usize = 64;

/// The bytes of a C-order `.npy` array of `shape` holding `data`.
pub fn encode<T: NpyElement>(shape: &[usize], data: &[T]) -> Result<Vec<u8>> {
    let count: usize = shape.iter().product();
    ensure!(
        count == data.len(),
        "npy: shape {shape:?} holds {count} values, not {}",
        data.len()
    );
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        T::DESCR
    );
    // Magic, 2-byte length, header, newline: a multiple of ALIGN.
    let unpadded = MAGIC.len() + 2 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(ALIGN) - unpadded));
    header.push('\n');
    let header_len = u16::try_from(header.len()).context("npy: header too long")?;
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + header.len() + std::mem::size_of_val(data));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &value in data {
        value.write_le(&mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_numpys_and_data_starts_aligned() {
        let bytes = encode(&[2, 3], &[1u16, 2, 3, 4, 5, 0xFFFF]).unwrap();
        assert_eq!(&bytes[..8], MAGIC);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let start = 10 + header_len;
        assert_eq!(start % ALIGN, 0);
        let header = std::str::from_utf8(&bytes[10..start]).unwrap();
        assert!(header.starts_with("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(&bytes[start..start + 4], &[1, 0, 2, 0]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xFF]);
        assert_eq!(bytes.len(), start + 12);
    }

    #[test]
    fn one_dimension_has_the_tuple_comma_and_a_wrong_count_is_refused() {
        let bytes = encode(&[2], &[0.5f32, -1.0]).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("'descr': '<f4'") && text.contains("'shape': (2,)"));
        assert_eq!(&bytes[bytes.len() - 4..], &(-1.0f32).to_le_bytes());
        let err = encode(&[3], &[1u16, 2]).unwrap_err().to_string();
        assert!(err.contains("holds 3 values, not 2"), "{err}");
    }
}
