//! [`Value`]: a scalar attribute as stored, decoded without knowing the Rust type.

use chrono::{NaiveDate, NaiveDateTime};

/// One attribute value as h5pom stores it, with `None` and dates already decoded.
///
/// Integers and floats keep their stored width, so a value written from an `i16` is read back
/// as [`Value::I16`]. Used by the generic loader and the `h5pom` inspector; typed fields convert
/// from it through [`Scalar`](crate::Scalar).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `None` (stored as `0` plus `<name>-type = "None"`).
    None,
    /// A boolean (HDF5 enum `FALSE`/`TRUE` over int8, as h5py writes it).
    Bool(bool),
    /// 8-bit signed integer.
    I8(i8),
    /// 16-bit signed integer.
    I16(i16),
    /// 32-bit signed integer.
    I32(i32),
    /// 64-bit signed integer.
    I64(i64),
    /// 8-bit unsigned integer.
    U8(u8),
    /// 16-bit unsigned integer.
    U16(u16),
    /// 32-bit unsigned integer.
    U32(u32),
    /// 64-bit unsigned integer.
    U64(u64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
    F64(f64),
    /// A string (variable-length UTF-8 when h5pom writes it; any HDF5 string when reading).
    Str(String),
    /// A date (stored as an int array `(year, month, day)` plus `<name>-type = "date"`).
    Date(NaiveDate),
    /// A date-time (int array `(year, month, day, hour, minute, second, microsecond)` plus
    /// `<name>-type = "datetime"`).
    DateTime(NaiveDateTime),
    /// A one-dimensional numeric attribute not marked as a date (written by other tools).
    List(Vec<Value>),
    /// A stored type h5pom does not decode; the text describes it.
    Unsupported(String),
}

impl Value {
    /// A short name of the stored type, as used in error messages (`int32`, `str`, `None`, …).
    pub fn type_name(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::I8(_) => "int8".into(),
            Value::I16(_) => "int16".into(),
            Value::I32(_) => "int32".into(),
            Value::I64(_) => "int64".into(),
            Value::U8(_) => "uint8".into(),
            Value::U16(_) => "uint16".into(),
            Value::U32(_) => "uint32".into(),
            Value::U64(_) => "uint64".into(),
            Value::F32(_) => "float32".into(),
            Value::F64(_) => "float64".into(),
            Value::Str(_) => "str".into(),
            Value::Date(_) => "date".into(),
            Value::DateTime(_) => "datetime".into(),
            Value::List(items) => match items.first() {
                Some(first) if items.iter().all(|v| v.type_name() == first.type_name()) => {
                    format!("{}[{}]", first.type_name(), items.len())
                }
                _ => "list".into(),
            },
            Value::Unsupported(what) => what.clone(),
        }
    }

    /// The value as a signed 128-bit integer, if it is an integer of any width.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::I8(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::I64(v) => v.into(),
            Value::U8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::U64(v) => v.into(),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::U8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Str(v) => write!(f, "{v:?}"),
            Value::Date(v) => write!(f, "{v}"),
            Value::DateTime(v) => write!(f, "{v}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Unsupported(what) => write!(f, "<{what}>"),
        }
    }
}
