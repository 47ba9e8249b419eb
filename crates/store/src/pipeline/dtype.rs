//! Element types the pipeline handles, and their HDF5 / numpy-style names.

use std::fmt;

use hdf5::Datatype;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor};

/// A numeric element type of an array dataset.
///
/// Names follow numpy (`"int32"`, `"float64"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl Dtype {
    /// Every dtype, in declaration order.
    pub const ALL: [Dtype; 10] = [
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::I64,
        Dtype::U8,
        Dtype::U16,
        Dtype::U32,
        Dtype::U64,
        Dtype::F32,
        Dtype::F64,
    ];

    /// Size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }

    /// numpy-style name: `"int8"`, ..., `"uint64"`, `"float32"`, `"float64"`.
    pub const fn name(self) -> &'static str {
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

    /// The dtype of an HDF5 type descriptor, if it is one of the ten numeric types.
    pub fn from_descriptor(desc: &TypeDescriptor) -> Option<Dtype> {
        Some(match desc {
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

    /// The dtype of an HDF5 datatype (any byte order), if it is one of the ten numeric types.
    pub fn from_datatype(dt: &Datatype) -> Option<Dtype> {
        dt.to_descriptor()
            .ok()
            .as_ref()
            .and_then(Dtype::from_descriptor)
    }

    /// The native-endian HDF5 datatype of this dtype.
    pub fn datatype(self) -> hdf5::Result<Datatype> {
        match self {
            Dtype::I8 => Datatype::from_type::<i8>(),
            Dtype::I16 => Datatype::from_type::<i16>(),
            Dtype::I32 => Datatype::from_type::<i32>(),
            Dtype::I64 => Datatype::from_type::<i64>(),
            Dtype::U8 => Datatype::from_type::<u8>(),
            Dtype::U16 => Datatype::from_type::<u16>(),
            Dtype::U32 => Datatype::from_type::<u32>(),
            Dtype::U64 => Datatype::from_type::<u64>(),
            Dtype::F32 => Datatype::from_type::<f32>(),
            Dtype::F64 => Datatype::from_type::<f64>(),
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Describes any HDF5 datatype for error messages (numpy-style name when numeric).
pub(crate) fn describe_datatype(dt: &Datatype) -> String {
    match dt.to_descriptor() {
        Ok(desc) => match Dtype::from_descriptor(&desc) {
            Some(d) => d.name().to_owned(),
            None => format!("{desc}"),
        },
        Err(e) => format!("<unknown HDF5 type: {e}>"),
    }
}

#[allow(unreachable_pub)] // sealed-trait pattern: public but unnameable outside the crate
mod sealed {
    pub trait Sealed {}
}

/// A plain numeric element the pipeline can encode and decode.
///
/// Implemented for `i8`..`i64`, `u8`..`u64`, `f32` and `f64` (sealed: the pipeline treats
/// elements as raw bytes, which is only sound for these padding-free types).
pub trait Element: hdf5::H5Type + Copy + Send + Sync + 'static + sealed::Sealed {
    /// The runtime dtype tag of this element type.
    const DTYPE: Dtype;

    /// Bit-for-bit equality (so `NaN` equals itself and `-0.0` differs from `0.0`): what
    /// change detection needs.
    fn same(&self, other: &Self) -> bool {
        as_bytes(std::slice::from_ref(self)) == as_bytes(std::slice::from_ref(other))
    }
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
        }
    )*};
}

element!(
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    f32 => F32, f64 => F64,
);

/// Views a slice of elements as its bytes.
pub(crate) fn as_bytes<T: Element>(s: &[T]) -> &[u8] {
    // SAFETY: `Element` is sealed to primitive integers and floats: no padding, every byte is
    // initialized, and `u8` has alignment 1; the length is the slice's exact byte size.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_names_and_hdf5_roundtrip() {
        for d in Dtype::ALL {
            let dt = d.datatype().unwrap();
            assert_eq!(dt.size(), d.size(), "{d}");
            assert_eq!(Dtype::from_datatype(&dt), Some(d));
            assert_eq!(describe_datatype(&dt), d.name());
        }
        assert_eq!(f64::DTYPE.name(), "float64");
        assert_eq!(<u16 as Element>::DTYPE, Dtype::U16);
    }
}
