//! Numeric element types of array fields.

use hdf5::H5Type;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor};

/// The numeric element types h5pom stores in datasets, named as numpy names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// `int8`
    I8,
    /// `int16`
    I16,
    /// `int32`
    I32,
    /// `int64`
    I64,
    /// `uint8`
    U8,
    /// `uint16`
    U16,
    /// `uint32`
    U32,
    /// `uint64`
    U64,
    /// `float32`
    F32,
    /// `float64`
    F64,
}

impl Dtype {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }

    /// The numpy name (`"float32"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::U64 => "uint64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// The dtype of an HDF5 type, if it is one of the numeric types above.
    pub fn from_descriptor(d: &TypeDescriptor) -> Option<Self> {
        Some(match d {
            TypeDescriptor::Integer(IntSize::U1) => Dtype::I8,
            TypeDescriptor::Integer(IntSize::U2) => Dtype::I16,
            TypeDescriptor::Integer(IntSize::U4) => Dtype::I32,
            TypeDescriptor::Integer(IntSize::U8) => Dtype::I64,
            TypeDescriptor::Unsigned(IntSize::U1) => Dtype::U8,
            TypeDescriptor::Unsigned(IntSize::U2) => Dtype::U16,
            TypeDescriptor::Unsigned(IntSize::U4) => Dtype::U32,
            TypeDescriptor::Unsigned(IntSize::U8) => Dtype::U64,
            TypeDescriptor::Float(FloatSize::U4) => Dtype::F32,
            TypeDescriptor::Float(FloatSize::U8) => Dtype::F64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A numeric type that array fields can hold.
pub trait Element: H5Type + Copy + PartialEq + Send + Sync + 'static {
    /// Its dtype.
    const DTYPE: Dtype;
    /// Equality used for change detection (floats by bits).
    fn same(&self, other: &Self) -> bool;
}

macro_rules! element {
    ($($t:ty => $d:ident, $same:expr);* $(;)?) => {$(
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
            fn same(&self, other: &Self) -> bool {
                let f: fn(&$t, &$t) -> bool = $same;
                f(self, other)
            }
        }
    )*};
}

element! {
    i8 => I8, |a, b| a == b;
    i16 => I16, |a, b| a == b;
    i32 => I32, |a, b| a == b;
    i64 => I64, |a, b| a == b;
    u8 => U8, |a, b| a == b;
    u16 => U16, |a, b| a == b;
    u32 => U32, |a, b| a == b;
    u64 => U64, |a, b| a == b;
    f32 => F32, |a, b| a.to_bits() == b.to_bits();
    f64 => F64, |a, b| a.to_bits() == b.to_bits();
}
