//! Reading a dataset's values without knowing its element type, up to a limit.

use std::str::FromStr;

use h5pom_store::Dtype;
use h5pom_store::reexports::hdf5::{self, H5Type, Selection};
use h5pom_store::reexports::ndarray::Array2;

use crate::error::{CliError, Hdf5Ctx};

/// How many values to print per dataset (`--values[=N|all]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// At most this many, in row-major order.
    First(usize),
    /// Every value.
    All,
}

impl FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Limit::All);
        }
        s.parse::<usize>()
            .map(Limit::First)
            .map_err(|_| format!("expected a number of values or `all`, found {s:?}"))
    }
}

/// Values of one dataset, flattened in row-major order and widened to 64 bits (except
/// `float32`, kept as is so that it prints as stored).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Values {
    /// Signed integers of any width.
    Int(Vec<i64>),
    /// Unsigned integers of any width.
    UInt(Vec<u64>),
    /// `float32`.
    F32(Vec<f32>),
    /// `float64`.
    F64(Vec<f64>),
    /// Not a numeric dtype; the text says what it is.
    Unsupported(String),
}

impl Values {
    /// How many values were read.
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::UInt(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Unsupported(_) => 0,
        }
    }
}

/// The first values of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    /// The values read.
    pub(crate) values: Values,
    /// How many elements the dataset has.
    pub(crate) total: usize,
}

impl Sample {
    /// True if fewer values were read than the dataset holds.
    pub(crate) fn truncated(&self) -> bool {
        !matches!(self.values, Values::Unsupported(_)) && self.values.len() < self.total
    }
}

/// Reads the first values of `ds` (at `path`, for errors) as `limit` says.
pub(crate) fn read(ds: &hdf5::Dataset, path: &str, limit: Limit) -> Result<Sample, CliError> {
    let total = ds.size();
    let dtype = ds.dtype().at("read dataset type", path)?;
    let n = match limit {
        Limit::First(n) => n.min(total),
        Limit::All => total,
    };
    let values = match Dtype::from_datatype(&dtype) {
        None => Values::Unsupported(format!(
            "{} elements",
            crate::dump::array_info(ds, path)?.dtype
        )),
        Some(Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64) => {
            Values::Int(first::<i64>(ds, n, total).at("read dataset", path)?)
        }
        Some(Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64) => {
            Values::UInt(first::<u64>(ds, n, total).at("read dataset", path)?)
        }
        Some(Dtype::F32) => Values::F32(first::<f32>(ds, n, total).at("read dataset", path)?),
        Some(_) => Values::F64(first::<f64>(ds, n, total).at("read dataset", path)?),
    };
    Ok(Sample { values, total })
}

/// The first `n` of the dataset's `total` elements in row-major order, converted to `T` by HDF5.
fn first<T: H5Type + Clone>(ds: &hdf5::Dataset, n: usize, total: usize) -> hdf5::Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if n == total {
        return ds.read_raw::<T>();
    }
    let shape = ds.shape();
    if shape.len() == 1 {
        return Ok(ds.read_slice_1d::<T, _>(0..n)?.to_vec());
    }
    // Any rank: select the first `n` elements as points (n is bounded by the limit).
    let points = Array2::from_shape_fn((n, shape.len()), |(i, axis)| {
        let stride: usize = shape[axis + 1..].iter().product();
        (i / stride) % shape[axis]
    });
    Ok(ds
        .read_slice_1d::<T, _>(Selection::Points(points))?
        .to_vec())
}

#[cfg(test)]
mod tests {
    use super::Limit;

    #[test]
    fn limits_parse() {
        assert_eq!("all".parse::<Limit>(), Ok(Limit::All));
        assert_eq!("7".parse::<Limit>(), Ok(Limit::First(7)));
        assert!("-1".parse::<Limit>().is_err());
        assert!("lots".parse::<Limit>().is_err());
    }
}
