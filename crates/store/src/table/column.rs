//! One column of a [`ColumnTable`](super::ColumnTable) in memory: typed storage, the `None`
//! mask, and the rows changed since the table was last written.

use crate::pipeline::{Dtype, Element, as_bytes};
use crate::value::Value;

use super::TableError;

/// The typed cells of a column.
#[derive(Debug, Clone)]
pub(crate) enum Cells {
    /// No typed value seen yet (every row `None`): stored as `int64` zeros.
    Untyped(usize),
    /// A numeric column: `len * width * dtype.size()` native-endian bytes. `width` is `None`
    /// for a 1-D column of numbers, `Some(n)` for a `[row, n]` column of fixed-size arrays.
    Num {
        dtype: Dtype,
        width: Option<usize>,
        bytes: Vec<u8>,
    },
    /// Booleans (HDF5's `FALSE`/`TRUE` enum, as h5py writes them).
    Bool(Vec<bool>),
    /// UTF-8 strings (variable length).
    Str(Vec<String>),
}

impl Cells {
    pub(crate) fn len(&self) -> usize {
        match self {
            Cells::Untyped(n) => *n,
            Cells::Num {
                dtype,
                width,
                bytes,
            } => bytes.len() / stride(*dtype, *width),
            Cells::Bool(v) => v.len(),
            Cells::Str(v) => v.len(),
        }
    }

    /// The stored type's name (for errors and docs): `float64`, `float32[3]`, `str`, ….
    pub(crate) fn type_name(&self) -> String {
        match self {
            Cells::Untyped(_) => "int64".into(),
            Cells::Num {
                dtype, width: None, ..
            } => dtype.name().into(),
            Cells::Num {
                dtype,
                width: Some(n),
                ..
            } => format!("{}[{n}]", dtype.name()),
            Cells::Bool(_) => "bool".into(),
            Cells::Str(_) => "str".into(),
        }
    }
}

/// Bytes per cell of a numeric column.
pub(crate) fn stride(dtype: Dtype, width: Option<usize>) -> usize {
    dtype.size() * width.unwrap_or(1)
}

/// The bytes of one numeric cell: a number, or a fixed-size array of numbers (up to 4 × 8
/// bytes without allocating).
type CellBytes = smallvec::SmallVec<[u8; 32]>;

/// The numeric dtype and native bytes of a number value.
fn scalar_num(v: &Value) -> Option<(Dtype, [u8; 8], usize)> {
    fn b<T: Element>(x: T) -> (Dtype, [u8; 8], usize) {
        let mut out = [0u8; 8];
        let bytes = as_bytes(std::slice::from_ref(&x));
        out[..bytes.len()].copy_from_slice(bytes);
        (T::DTYPE, out, bytes.len())
    }
    Some(match *v {
        Value::I8(x) => b(x),
        Value::I16(x) => b(x),
        Value::I32(x) => b(x),
        Value::I64(x) => b(x),
        Value::U8(x) => b(x),
        Value::U16(x) => b(x),
        Value::U32(x) => b(x),
        Value::U64(x) => b(x),
        Value::F32(x) => b(x),
        Value::F64(x) => b(x),
        _ => return None,
    })
}

/// The dtype, width and native bytes of a numeric cell: a number (width `None`) or a
/// non-empty list of numbers of one type (width `Some(len)`).
fn num(v: &Value) -> Option<(Dtype, Option<usize>, CellBytes)> {
    if let Value::List(items) = v {
        let (dtype, _, _) = scalar_num(items.first()?)?;
        let mut bytes = CellBytes::new();
        for item in items {
            let (d, b, size) = scalar_num(item)?;
            if d != dtype {
                return None;
            }
            bytes.extend_from_slice(&b[..size]);
        }
        return Some((dtype, Some(items.len()), bytes));
    }
    let (dtype, b, size) = scalar_num(v)?;
    Some((dtype, None, CellBytes::from_slice(&b[..size])))
}

/// True if `v` is a value some column can hold.
fn columnar(v: &Value) -> bool {
    num(v).is_some() || matches!(v, Value::Bool(_) | Value::Str(_))
}

/// A column: name, cells, `None` mask, and what changed since the last write.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) cells: Cells,
    /// 1 where the row holds `None`; allocated at the first `None`.
    pub(crate) mask: Option<Vec<u8>>,
    /// Rows holding `None`: the mask dataset exists exactly when this is nonzero.
    pub(crate) nones: usize,
    /// Rows whose cell changed since the last write (unsorted, may repeat).
    pub(crate) dirty: Vec<usize>,
    /// Rows whose mask bit changed since the last write.
    pub(crate) mask_dirty: Vec<usize>,
    /// The whole column must be written (new, or its type changed).
    pub(crate) whole: bool,
}

impl Column {
    pub(crate) fn new(name: String) -> Self {
        Column {
            name,
            cells: Cells::Untyped(0),
            mask: None,
            nones: 0,
            dirty: Vec::new(),
            mask_dirty: Vec::new(),
            whole: true,
        }
    }

    /// Gives an untyped column the type of `v` (the existing rows become zeros / `false` /
    /// empty strings, all `None`).
    /// True once the column has a type (a first value that is not `None` set it).
    pub(crate) fn is_typed(&self) -> bool {
        !matches!(self.cells, Cells::Untyped(_))
    }

    fn adopt(&mut self, v: &Value) -> Result<(), TableError> {
        let Cells::Untyped(n) = self.cells else {
            return Ok(());
        };
        self.cells = match v {
            Value::Bool(_) => Cells::Bool(vec![false; n]),
            Value::Str(_) => Cells::Str(vec![String::new(); n]),
            other => match num(other) {
                Some((dtype, width, _)) => Cells::Num {
                    dtype,
                    width,
                    bytes: vec![0; n * stride(dtype, width)],
                },
                None => return Err(self.not_columnar(v)),
            },
        };
        self.whole = true;
        Ok(())
    }

    fn not_columnar(&self, v: &Value) -> TableError {
        TableError::NotColumnar {
            column: self.name.clone(),
            found: v.type_name(),
        }
    }

    fn mixed(&self, v: &Value) -> TableError {
        TableError::MixedTypes {
            column: self.name.clone(),
            stored: self.cells.type_name(),
            found: v.type_name(),
        }
    }

    /// Checks that [`set`](Self::set) would accept `v`, changing nothing.
    pub(crate) fn accepts(&self, v: &Value) -> Result<(), TableError> {
        let ok = match (&self.cells, v) {
            (_, Value::None) => true,
            (Cells::Untyped(_), _) => columnar(v),
            (Cells::Bool(_), Value::Bool(_)) | (Cells::Str(_), Value::Str(_)) => true,
            // A number: no cell bytes built (this runs for every cell of every row).
            (
                Cells::Num {
                    dtype, width: None, ..
                },
                v,
            ) => scalar_num(v).is_some_and(|(d, _, _)| d == *dtype),
            (Cells::Num { dtype, width, .. }, v) => {
                num(v).is_some_and(|(d, w, _)| d == *dtype && w == *width)
            }
            _ => false,
        };
        match (ok, columnar(v)) {
            (true, _) => Ok(()),
            (false, true) => Err(self.mixed(v)),
            (false, false) => Err(self.not_columnar(v)),
        }
    }

    /// Appends a zero cell (the caller sets it next).
    pub(crate) fn push_zero(&mut self) {
        match &mut self.cells {
            Cells::Untyped(n) => *n += 1,
            Cells::Num {
                dtype,
                width,
                bytes,
            } => bytes.resize(bytes.len() + stride(*dtype, *width), 0),
            Cells::Bool(v) => v.push(false),
            Cells::Str(v) => v.push(String::new()),
        }
        if let Some(m) = &mut self.mask {
            m.push(0);
        }
    }

    /// Sets row `i` to `v`; marks it dirty if its stored form changed. Values compare bit for
    /// bit (`NaN` equals itself, `-0.0` differs from `0.0`).
    pub(crate) fn set(&mut self, i: usize, v: &Value) -> Result<(), TableError> {
        self.set_row(i, v, true)
    }

    /// [`set`](Self::set), recording the change only if `track` (a row appended since the
    /// last write is written whole anyway: the table writes every chunk of its new tail).
    pub(crate) fn set_row(&mut self, i: usize, v: &Value, track: bool) -> Result<(), TableError> {
        let none = matches!(v, Value::None);
        if !none {
            self.adopt(v)?;
        }
        if self.set_none(i, none) && track {
            self.mask_dirty.push(i);
        }
        let changed = if !none {
            match (&mut self.cells, v) {
                (Cells::Bool(c), Value::Bool(x)) => std::mem::replace(&mut c[i], *x) != *x,
                (Cells::Str(c), Value::Str(x)) => {
                    if c[i] != *x {
                        c[i].clone_from(x);
                        true
                    } else {
                        false
                    }
                }
                (
                    Cells::Num {
                        dtype,
                        width: None,
                        bytes,
                    },
                    v,
                ) if scalar_num(v).is_some_and(|(d, _, _)| d == *dtype) => {
                    // A number into a number column: straight from its native bytes.
                    let (_, b, size) = scalar_num(v).unwrap_or((*dtype, [0; 8], 0));
                    let cell = &mut bytes[i * size..(i + 1) * size];
                    let differs = cell != &b[..size];
                    cell.copy_from_slice(&b[..size]);
                    differs
                }
                (
                    Cells::Num {
                        dtype,
                        width,
                        bytes,
                    },
                    v,
                ) => match num(v) {
                    Some((d, w, b)) if d == *dtype && w == *width => {
                        let size = b.len();
                        let cell = &mut bytes[i * size..(i + 1) * size];
                        let differs = cell != &b[..];
                        cell.copy_from_slice(&b);
                        differs
                    }
                    Some(_) => return Err(self.mixed(v)),
                    None if matches!(v, Value::Bool(_) | Value::Str(_)) => {
                        return Err(self.mixed(v));
                    }
                    None => return Err(self.not_columnar(v)),
                },
                (_, v) if columnar(v) => {
                    return Err(self.mixed(v));
                }
                (_, v) => return Err(self.not_columnar(v)),
            }
        } else {
            // A `None` cell holds the zero value, so a file's bytes never depend on history.
            self.zero(i)
        };
        if changed && track {
            self.dirty.push(i);
        }
        Ok(())
    }

    /// Sets the mask bit of row `i`; true if it changed.
    fn set_none(&mut self, i: usize, none: bool) -> bool {
        let len = self.cells.len();
        let mask = match (&mut self.mask, none) {
            (Some(m), _) => m,
            (None, false) => return false,
            (m @ None, true) => m.insert(vec![0; len]),
        };
        let was = mask[i] != 0;
        mask[i] = u8::from(none);
        match (was, none) {
            (false, true) => self.nones += 1,
            (true, false) => self.nones -= 1,
            _ => return false,
        }
        true
    }

    /// Zeroes row `i`'s cell; true if it changed.
    fn zero(&mut self, i: usize) -> bool {
        match &mut self.cells {
            Cells::Untyped(_) => false,
            Cells::Num {
                dtype,
                width,
                bytes,
            } => {
                let s = stride(*dtype, *width);
                let cell = &mut bytes[i * s..(i + 1) * s];
                let was = cell.iter().any(|&b| b != 0);
                cell.fill(0);
                was
            }
            Cells::Bool(c) => std::mem::replace(&mut c[i], false),
            Cells::Str(c) => {
                let was = !c[i].is_empty();
                c[i].clear();
                was
            }
        }
    }

    /// Moves the last row into row `i` and drops the last row.
    pub(crate) fn swap_remove(&mut self, i: usize) {
        let last = self.cells.len() - 1;
        match &mut self.cells {
            Cells::Untyped(n) => *n -= 1,
            Cells::Num {
                dtype,
                width,
                bytes,
            } => {
                let s = stride(*dtype, *width);
                bytes.copy_within(last * s..(last + 1) * s, i * s);
                bytes.truncate(last * s);
            }
            Cells::Bool(c) => {
                c.swap_remove(i);
            }
            Cells::Str(c) => {
                c.swap_remove(i);
            }
        }
        if let Some(m) = &mut self.mask {
            if m[i] != 0 {
                self.nones -= 1;
            }
            m.swap_remove(i);
        }
        if i < last {
            self.dirty.push(i);
            self.mask_dirty.push(i);
        }
    }

    /// Row `i` as a [`Value`] (`None` where masked).
    pub(crate) fn value(&self, i: usize) -> Value {
        if self.mask.as_ref().is_some_and(|m| m[i] != 0) {
            return Value::None;
        }
        match &self.cells {
            Cells::Untyped(_) => Value::None,
            Cells::Bool(c) => Value::Bool(c[i]),
            Cells::Str(c) => Value::Str(c[i].clone()),
            Cells::Num {
                dtype,
                width,
                bytes,
            } => {
                let s = stride(*dtype, *width);
                let cell = &bytes[i * s..(i + 1) * s];
                match width {
                    None => item_value(*dtype, cell),
                    Some(_) => Value::List(
                        cell.chunks_exact(dtype.size())
                            .map(|b| item_value(*dtype, b))
                            .collect(),
                    ),
                }
            }
        }
    }
}

/// One number of type `dtype` from its native bytes.
pub(crate) fn item_value(dtype: Dtype, cell: &[u8]) -> Value {
    macro_rules! rd {
        ($t:ty, $v:ident) => {
            Value::$v(<$t>::from_ne_bytes(cell.try_into().unwrap_or_default()))
        };
    }
    match dtype {
        Dtype::I8 => rd!(i8, I8),
        Dtype::I16 => rd!(i16, I16),
        Dtype::I32 => rd!(i32, I32),
        Dtype::I64 => rd!(i64, I64),
        Dtype::U8 => rd!(u8, U8),
        Dtype::U16 => rd!(u16, U16),
        Dtype::U32 => rd!(u32, U32),
        Dtype::U64 => rd!(u64, U64),
        Dtype::F32 => rd!(f32, F32),
        Dtype::F64 => rd!(f64, F64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_tracks_changes_bit_for_bit() {
        let mut c = Column::new("x".into());
        c.push_zero();
        c.push_zero();
        c.set(0, &Value::F64(1.5)).unwrap();
        c.set(1, &Value::F64(0.0)).unwrap();
        assert_eq!(c.dirty, [0]); // 0.0 over a zero cell changes nothing
        c.dirty.clear();
        c.set(1, &Value::F64(-0.0)).unwrap();
        assert_eq!(c.dirty, [1]);
        c.dirty.clear();
        c.set(0, &Value::F64(f64::NAN)).unwrap();
        c.set(0, &Value::F64(f64::NAN)).unwrap();
        assert_eq!(c.dirty, [0]);
        assert!(matches!(
            c.set(0, &Value::I32(3)),
            Err(TableError::MixedTypes { .. })
        ));
        assert!(matches!(
            c.set(0, &Value::Str("a".into())),
            Err(TableError::MixedTypes { .. })
        ));
    }

    #[test]
    fn none_mask_and_untyped_columns() {
        let mut c = Column::new("s".into());
        c.push_zero();
        c.set(0, &Value::None).unwrap();
        assert_eq!(c.nones, 1);
        assert_eq!(c.value(0), Value::None);
        c.push_zero();
        c.set(1, &Value::Str("hi".into())).unwrap();
        assert_eq!(c.value(1), Value::Str("hi".into()));
        assert_eq!(c.value(0), Value::None);
        c.set(0, &Value::Str("a".into())).unwrap();
        assert_eq!(c.nones, 0);
        c.swap_remove(0);
        assert_eq!(c.value(0), Value::Str("hi".into()));
        assert!(matches!(
            c.set(0, &Value::List(vec![])),
            Err(TableError::NotColumnar { .. })
        ));
    }

    #[test]
    fn array_cells_keep_their_width() {
        let v = |x: f32| {
            Value::List(vec![
                Value::F32(x),
                Value::F32(x + 1.0),
                Value::F32(x + 2.0),
            ])
        };
        let mut c = Column::new("p".into());
        for i in 0..3 {
            c.push_zero();
            c.set(i, &v(i as f32 * 10.0)).unwrap();
        }
        assert_eq!(c.cells.type_name(), "float32[3]");
        assert_eq!(c.value(1), v(10.0));
        c.dirty.clear();
        c.set(1, &v(10.0)).unwrap();
        assert!(c.dirty.is_empty());
        c.swap_remove(0);
        assert_eq!(c.value(0), v(20.0));
        assert_eq!(c.cells.len(), 2);
        let short = Value::List(vec![Value::F32(1.0)]);
        assert!(matches!(
            c.set(0, &short),
            Err(TableError::MixedTypes { stored, .. }) if stored == "float32[3]"
        ));
        assert!(matches!(
            c.set(0, &Value::F32(1.0)),
            Err(TableError::MixedTypes { .. })
        ));
        c.set(1, &Value::None).unwrap();
        assert_eq!(c.value(1), Value::None);
        assert_eq!(c.value(0), v(20.0));
    }
}
