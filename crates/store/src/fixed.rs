//! Fixed-size arrays of numbers (and booleans) as one value: `[T; N]` and, with the `glam`
//! feature, glam's vectors and quaternions. Each is one 1-D attribute of `N` elements of `T`'s
//! HDF5 type in a group, and one `[row, N]` column in a table.

use crate::scalar::{Scalar, ScalarError};
use crate::value::Value;

/// A [`Scalar`] that can be an item of a fixed-size array field (`[T; N]`): the integers,
/// floats and `bool`.
pub trait ArrayItem: Scalar + Copy {
    /// True if `[Self; N]` fits a `[row, N]` table column (numbers; not `bool`).
    const IN_COLUMN: bool = true;
}

macro_rules! items {
    ($($t:ty),*) => {$(impl ArrayItem for $t {})*};
}
items!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);
impl ArrayItem for bool {
    const IN_COLUMN: bool = false;
}

/// The stored form of a fixed-size array: a list of its items' values.
pub fn array_to_value<T: ArrayItem>(items: &[T]) -> Value {
    Value::List(items.iter().map(Scalar::to_value).collect())
}

/// Reads `N` items from a stored list (as [`array_to_value`] writes it), or says why not.
pub fn array_from_value<T: ArrayItem, const N: usize>(
    v: Value,
    expected: &'static str,
) -> Result<[T; N], ScalarError> {
    let Value::List(items) = v else {
        return Err(ScalarError::Mismatch {
            expected,
            found: v.type_name(),
        });
    };
    if items.len() != N {
        return Err(ScalarError::Mismatch {
            expected,
            found: format!("a list of {} items", items.len()),
        });
    }
    let v: Vec<T> = items
        .into_iter()
        .map(T::from_value)
        .collect::<Result<_, _>>()?;
    <[T; N]>::try_from(v).map_err(|v| ScalarError::Mismatch {
        expected,
        found: format!("a list of {} items", v.len()),
    })
}

impl<T: ArrayItem, const N: usize> Scalar for [T; N] {
    const TYPE_NAME: &'static str = "array";
    const COLUMNAR: bool = T::IN_COLUMN;
    fn to_value(&self) -> Value {
        array_to_value(self)
    }
    fn from_value(v: Value) -> Result<Self, ScalarError> {
        array_from_value(v, "a fixed-size array")
    }
    fn same(&self, other: &Self) -> bool {
        self.iter().zip(other).all(|(a, b)| a.same(b))
    }
}

/// glam's vectors and quaternions: exactly the layout of `[T; N]` (a quaternion is
/// `[x, y, z, w]`).
#[cfg(feature = "glam")]
mod glam_types {
    use super::*;

    macro_rules! glam_scalar {
        ($($ty:ident: [$t:ty; $n:literal]),* $(,)?) => {$(
            impl Scalar for glam::$ty {
                const TYPE_NAME: &'static str = concat!("glam::", stringify!($ty));
                fn to_value(&self) -> Value {
                    array_to_value(&self.to_array())
                }
                fn from_value(v: Value) -> Result<Self, ScalarError> {
                    array_from_value::<$t, $n>(v, Self::TYPE_NAME).map(glam::$ty::from_array)
                }
                fn same(&self, other: &Self) -> bool {
                    Scalar::same(&self.to_array(), &other.to_array())
                }
            }
        )*};
    }

    glam_scalar!(
        Vec2: [f32; 2], Vec3: [f32; 3], Vec3A: [f32; 3], Vec4: [f32; 4], Quat: [f32; 4],
        DVec2: [f64; 2], DVec3: [f64; 3], DVec4: [f64; 4], DQuat: [f64; 4],
        IVec2: [i32; 2], IVec3: [i32; 3], IVec4: [i32; 4],
        UVec2: [u32; 2], UVec3: [u32; 3], UVec4: [u32; 4],
    );

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn glam_types_store_like_arrays() {
            let q = glam::Quat::from_xyzw(0.1, 0.2, 0.3, 0.9);
            assert_eq!(q.to_value(), [0.1f32, 0.2, 0.3, 0.9].to_value());
            assert_eq!(glam::Quat::from_value(q.to_value()), Ok(q));
            let v = glam::Vec3::new(1.0, 2.0, 3.0);
            assert_eq!(v.to_value(), [1.0f32, 2.0, 3.0].to_value());
            assert!(glam::Vec4::from_value(v.to_value()).is_err());
            assert_eq!(
                glam::IVec2::from_value([3i32, -4].to_value()),
                Ok(glam::IVec2::new(3, -4))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_check_length_and_item_type() {
        let v = [1.5f32, 2.0, -3.0].to_value();
        assert_eq!(
            v,
            Value::List(vec![Value::F32(1.5), Value::F32(2.0), Value::F32(-3.0)])
        );
        assert_eq!(<[f32; 3]>::from_value(v.clone()), Ok([1.5, 2.0, -3.0]));
        assert!(matches!(
            <[f32; 4]>::from_value(v.clone()),
            Err(ScalarError::Mismatch { found, .. }) if found == "a list of 3 items"
        ));
        assert!(<[i32; 3]>::from_value(v).is_err());
        assert!(<[f32; 3]>::from_value(Value::F32(1.0)).is_err());
        assert!(<[u8; 2]>::from_value(Value::List(vec![Value::I64(1), Value::I64(300)])).is_err());
        assert!([f32::NAN].same(&[f32::NAN]));
        assert!(![0.0f32].same(&[-0.0]));
    }
}
