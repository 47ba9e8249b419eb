//! [`Scalar`]: Rust types stored as one attribute.

use chrono::{NaiveDate, NaiveDateTime};

use crate::value::Value;

/// Why a stored [`Value`] could not become a Rust scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarError {
    /// The stored type is not one this Rust type reads.
    Mismatch {
        /// What the Rust type needs.
        expected: &'static str,
        /// What was stored.
        found: String,
    },
    /// An integer that does not fit the Rust type.
    OutOfRange {
        /// The Rust type.
        expected: &'static str,
        /// The stored value.
        value: String,
    },
}

/// A Rust value stored as a single HDF5 attribute.
///
/// Implemented for `i8`…`i64`, `u8`…`u64`, `f32`, `f64`, `bool`, `String`, `chrono::NaiveDate`,
/// `chrono::NaiveDateTime`, and `Option<T>` of any of these (where `None` is stored distinctly
/// from every value). Reading is lenient where nothing is lost: any stored integer width is
/// accepted if the value fits, a `float32` reads into an `f64`, any HDF5 string into a `String`.
pub trait Scalar: Sized + Clone {
    /// The Rust-side type name used in errors (`"u32"`, `"Option<String>"`).
    const TYPE_NAME: &'static str;
    /// The value to store.
    fn to_value(&self) -> Value;
    /// Converts a stored value, or says why not.
    fn from_value(v: Value) -> Result<Self, ScalarError>;
    /// Equality used for change detection (floats compare by bits, so `NaN == NaN`).
    fn same(&self, other: &Self) -> bool;
    /// The value when the attribute is absent, if the type has one (`Option` → `None`).
    fn if_missing() -> Option<Self> {
        None
    }
    /// True if the value fits one column of a table (all but arrays of `bool`).
    const COLUMNAR: bool = true;
}

fn mismatch<T>(expected: &'static str, v: &Value) -> Result<T, ScalarError> {
    Err(ScalarError::Mismatch {
        expected,
        found: v.type_name(),
    })
}

macro_rules! int_scalar {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl Scalar for $t {
            const TYPE_NAME: &'static str = stringify!($t);
            fn to_value(&self) -> Value {
                Value::$variant(*self)
            }
            fn from_value(v: Value) -> Result<Self, ScalarError> {
                match v.as_i128() {
                    Some(i) => <$t>::try_from(i).map_err(|_| ScalarError::OutOfRange {
                        expected: stringify!($t),
                        value: i.to_string(),
                    }),
                    None => mismatch(stringify!($t), &v),
                }
            }
            fn same(&self, other: &Self) -> bool {
                self == other
            }
        }
    )*};
}

int_scalar!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32, u64 => U64);

impl Scalar for f32 {
    const TYPE_NAME: &'static str = "f32";
    fn to_value(&self) -> Value {
        Value::F32(*self)
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        match v {
            Value::F32(x) => Ok(x),
            other => mismatch("f32", &other),
        }
    }
    fn same(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

impl Scalar for f64 {
    const TYPE_NAME: &'static str = "f64";
    fn to_value(&self) -> Value {
        Value::F64(*self)
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        match v {
            Value::F64(x) => Ok(x),
            Value::F32(x) => Ok(x.into()),
            other => mismatch("f64", &other),
        }
    }
    fn same(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
}

impl Scalar for bool {
    const TYPE_NAME: &'static str = "bool";
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        match v {
            Value::Bool(b) => Ok(b),
            other => match other.as_i128() {
                // Python 2 era files store booleans as 0/1 integers.
                Some(0) => Ok(false),
                Some(1) => Ok(true),
                _ => mismatch("bool", &other),
            },
        }
    }
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

impl Scalar for String {
    const TYPE_NAME: &'static str = "String";
    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        match v {
            Value::Str(s) => Ok(s),
            other => mismatch("String", &other),
        }
    }
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

impl Scalar for NaiveDate {
    const TYPE_NAME: &'static str = "NaiveDate";
    fn to_value(&self) -> Value {
        Value::Date(*self)
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        match v {
            Value::Date(d) => Ok(d),
            other => mismatch("NaiveDate", &other),
        }
    }
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

impl Scalar for NaiveDateTime {
    const TYPE_NAME: &'static str = "NaiveDateTime";
    fn to_value(&self) -> Value {
        Value::DateTime(*self)
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        match v {
            Value::DateTime(d) => Ok(d),
            other => mismatch("NaiveDateTime", &other),
        }
    }
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

impl<T: Scalar> Scalar for Option<T> {
    const TYPE_NAME: &'static str = "Option";
    const COLUMNAR: bool = T::COLUMNAR;
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::None,
        }
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        match v {
            Value::None => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.same(b),
            (None, None) => true,
            _ => false,
        }
    }
    fn if_missing() -> Option<Self> {
        Some(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_widen_and_range_check() {
        assert_eq!(u8::from_value(Value::I64(255)), Ok(255));
        assert!(matches!(
            u8::from_value(Value::I64(256)),
            Err(ScalarError::OutOfRange { .. })
        ));
        assert!(matches!(
            u32::from_value(Value::I8(-1)),
            Err(ScalarError::OutOfRange { .. })
        ));
        assert!(matches!(
            i32::from_value(Value::F64(1.0)),
            Err(ScalarError::Mismatch { .. })
        ));
    }

    #[test]
    fn option_distinguishes_none() {
        assert_eq!(Option::<i32>::from_value(Value::None), Ok(None));
        assert_eq!(Option::<i32>::from_value(Value::I32(0)), Ok(Some(0)));
        assert!(i32::from_value(Value::None).is_err());
    }

    #[test]
    fn floats_compare_by_bits() {
        assert!(f64::NAN.same(&f64::NAN));
        assert!(!0.0f64.same(&-0.0));
        assert_eq!(f64::from_value(Value::F32(1.5)), Ok(1.5));
        assert!(f32::from_value(Value::F64(1.5)).is_err());
    }
}
