//! Attribute I/O: one [`Value`] per attribute, with h5pom's `None` and date encodings.
//!
//! Writing overwrites in place when the stored type and shape already match (one HDF5 call),
//! and otherwise deletes and recreates the attribute.

use chrono::{Datelike, NaiveDate, Timelike};
use hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{H5Type, Location};

use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object as ffi;
use crate::value::Value;

/// Suffix of the companion attribute that marks `None` and dates: `<name>-type`.
pub const TYPE_SUFFIX: &str = "-type";

/// Where an attribute lives, for error messages.
pub(crate) struct At<'a> {
    pub(crate) loc: &'a Location,
    pub(crate) path: &'a str,
    /// The caller created `loc` and has not written any of the names it writes through this
    /// `At`: attributes are created without checking for a stored one (two HDF5 calls fewer
    /// per attribute, and no `-type` marker to delete). Writing a name twice then fails.
    pub(crate) fresh: bool,
}

impl<'a> At<'a> {
    pub(crate) fn new(loc: &'a Location, path: &'a str) -> Self {
        At {
            loc,
            path,
            fresh: false,
        }
    }

    /// The same place, known to hold none of the names written through it (see `fresh`).
    pub(crate) fn fresh(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    fn here(&self, name: &str) -> String {
        format!("{}@{}", self.path, name)
    }

    /// Does the attribute exist?
    pub(crate) fn exists(&self, name: &str) -> Result<bool> {
        if self.fresh {
            return Ok(false);
        }
        ffi::attr_exists(self.loc, name).ctx("check attribute", || self.here(name))
    }

    /// Deletes the attribute if it exists.
    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        if self.exists(name)? {
            self.loc
                .delete_attr(name)
                .ctx("delete attribute", || self.here(name))?;
        }
        Ok(())
    }

    /// Writes one value under `name`, with its `-type` marker when needed.
    pub(crate) fn write_value(&self, name: &str, value: &Value) -> Result<()> {
        if self.fresh {
            // A new scalar without a marker: one create and one write, nothing looked up.
            if ffi::create_scalar_attr(self.loc, name, value)
                .ctx("write attribute", || self.here(name))?
            {
                return Ok(());
            }
        }
        let marker = match value {
            Value::None => Some("None"),
            Value::Date(_) => Some("date"),
            Value::DateTime(_) => Some("datetime"),
            _ => None,
        };
        match value {
            Value::None => self.write_num(name, &0i64)?,
            Value::Bool(v) => self.write_num(name, v)?,
            Value::I8(v) => self.write_num(name, v)?,
            Value::I16(v) => self.write_num(name, v)?,
            Value::I32(v) => self.write_num(name, v)?,
            Value::I64(v) => self.write_num(name, v)?,
            Value::U8(v) => self.write_num(name, v)?,
            Value::U16(v) => self.write_num(name, v)?,
            Value::U32(v) => self.write_num(name, v)?,
            Value::U64(v) => self.write_num(name, v)?,
            Value::F32(v) => self.write_num(name, v)?,
            Value::F64(v) => self.write_num(name, v)?,
            Value::Str(s) => self.write_str(name, s)?,
            Value::Date(d) => self.write_ints(
                name,
                &[i64::from(d.year()), d.month().into(), d.day().into()],
            )?,
            Value::DateTime(t) => self.write_ints(
                name,
                &[
                    i64::from(t.year()),
                    t.month().into(),
                    t.day().into(),
                    t.hour().into(),
                    t.minute().into(),
                    t.second().into(),
                    // Leap seconds (nanosecond >= 1e9) keep their microsecond count above 999_999.
                    (t.nanosecond() / 1000).into(),
                ],
            )?,
            Value::List(items) => self.write_list(name, items)?,
            Value::Unsupported(_) => {
                return Err(Error::InvalidName {
                    name: name.to_owned(),
                    reason: "unsupported values cannot be written as an attribute",
                });
            }
        }
        let type_name = format!("{name}{TYPE_SUFFIX}");
        match marker {
            Some(m) => self.write_str(&type_name, m),
            None => self.delete(&type_name),
        }
    }

    /// The stored attribute `name` if it has type `T` and shape `shape` (rewritten in place);
    /// otherwise it is deleted, if there is one, and `None` returned.
    fn reusable<T: H5Type>(&self, name: &str, shape: &[usize]) -> Result<Option<hdf5::Attribute>> {
        if !self.exists(name)? {
            return Ok(None);
        }
        let attr = self
            .loc
            .attr(name)
            .ctx("open attribute", || self.here(name))?;
        let same_type = attr
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map(|d| d == T::type_descriptor())
            .unwrap_or(false);
        if same_type && attr.shape() == shape {
            return Ok(Some(attr));
        }
        drop(attr);
        self.loc
            .delete_attr(name)
            .ctx("delete attribute", || self.here(name))?;
        Ok(None)
    }

    fn write_num<T: H5Type>(&self, name: &str, v: &T) -> Result<()> {
        if let Some(attr) = self.reusable::<T>(name, &[])? {
            return attr
                .write_scalar(v)
                .ctx("write attribute", || self.here(name));
        }
        self.loc
            .new_attr::<T>()
            .create(name)
            .and_then(|a| a.write_scalar(v))
            .ctx("write attribute", || self.here(name))
    }

    fn write_str(&self, name: &str, s: &str) -> Result<()> {
        let v: VarLenUnicode = s.parse().map_err(|_| Error::TypeMismatch {
            path: self.path.to_owned(),
            field: name.to_owned(),
            expected: "a string without NUL bytes".into(),
            found: "a string containing NUL".into(),
        })?;
        self.write_num(name, &v)
    }

    fn write_ints(&self, name: &str, v: &[i64]) -> Result<()> {
        self.delete(name)?;
        self.loc
            .new_attr_builder()
            .with_data(v)
            .create(name)
            .map(|_| ())
            .ctx("write attribute", || self.here(name))
    }

    /// Writes a list of numbers (or booleans) of one type as a 1-D attribute of that type;
    /// in place when the stored attribute has the same type and length.
    fn write_list(&self, name: &str, items: &[Value]) -> Result<()> {
        macro_rules! typed {
            ($($variant:ident => $t:ty),*) => {
                match items.first() {
                    $(Some(Value::$variant(_)) => {
                        let v: Option<Vec<$t>> = items
                            .iter()
                            .map(|x| match x {
                                Value::$variant(x) => Some(*x),
                                _ => None,
                            })
                            .collect();
                        match v {
                            Some(v) => return self.write_array(name, &v),
                            None => {}
                        }
                    })*
                    _ => {}
                }
            };
        }
        typed!(Bool => bool, I8 => i8, I16 => i16, I32 => i32, I64 => i64, U8 => u8,
            U16 => u16, U32 => u32, U64 => u64, F32 => f32, F64 => f64);
        Err(Error::TypeMismatch {
            path: self.path.to_owned(),
            field: name.to_owned(),
            expected: "a non-empty list of numbers or booleans of one type".into(),
            found: Value::List(items.to_vec()).to_string(),
        })
    }

    fn write_array<T: H5Type>(&self, name: &str, v: &[T]) -> Result<()> {
        if let Some(attr) = self.reusable::<T>(name, &[v.len()])? {
            return attr.write_raw(v).ctx("write attribute", || self.here(name));
        }
        self.loc
            .new_attr_builder()
            .with_data(v)
            .create(name)
            .map(|_| ())
            .ctx("write attribute", || self.here(name))
    }

    /// Reads the value stored under `name`; `Ok(None)` if there is no such attribute.
    pub(crate) fn read_value(&self, name: &str) -> Result<Option<Value>> {
        if !self.exists(name)? {
            return Ok(None);
        }
        let type_name = format!("{name}{TYPE_SUFFIX}");
        let marker = if self.exists(&type_name)? {
            match self.read_plain(&type_name)? {
                Value::Str(m) => Some(m),
                other => {
                    return Err(self.corrupt(&type_name, format!("type marker is {other}")));
                }
            }
        } else {
            None
        };
        let raw = self.read_plain(name)?;
        Ok(Some(match marker.as_deref() {
            None => raw,
            Some("None") => Value::None,
            Some("date") => self.decode_date(name, &raw)?,
            Some("datetime") => self.decode_datetime(name, &raw)?,
            Some(other) => return Err(self.corrupt(&type_name, format!("unknown type {other:?}"))),
        }))
    }

    fn corrupt(&self, name: &str, reason: String) -> Error {
        Error::Corrupt {
            path: self.here(name),
            reason,
        }
    }

    fn ints(&self, name: &str, raw: &Value, n: usize) -> Result<Vec<i64>> {
        let bad = || self.corrupt(name, format!("expected {n} integers, found {raw}"));
        let Value::List(items) = raw else {
            return Err(bad());
        };
        if items.len() != n {
            return Err(bad());
        }
        items
            .iter()
            .map(|v| {
                v.as_i128()
                    .and_then(|i| i64::try_from(i).ok())
                    .ok_or_else(bad)
            })
            .collect()
    }

    fn decode_date(&self, name: &str, raw: &Value) -> Result<Value> {
        let v = self.ints(name, raw, 3)?;
        date(&v)
            .map(Value::Date)
            .ok_or_else(|| self.corrupt(name, format!("invalid date {v:?}")))
    }

    fn decode_datetime(&self, name: &str, raw: &Value) -> Result<Value> {
        let v = self.ints(name, raw, 7)?;
        let t = date(&v[..3]).and_then(|d| {
            let part = |i: usize| u32::try_from(v[i]).ok();
            d.and_hms_micro_opt(part(3)?, part(4)?, part(5)?, part(6)?)
        });
        t.map(Value::DateTime)
            .ok_or_else(|| self.corrupt(name, format!("invalid datetime {v:?}")))
    }

    /// Reads an attribute by its stored HDF5 type, without interpreting markers.
    pub(crate) fn read_plain(&self, name: &str) -> Result<Value> {
        let here = || self.here(name);
        let attr = self.loc.attr(name).ctx("open attribute", here)?;
        let desc = attr
            .dtype()
            .and_then(|t| t.to_descriptor())
            .ctx("read attribute type", here)?;
        let shape = attr.shape();
        let n: usize = shape.iter().product();
        match shape.len() {
            0 => {}
            1 => {
                if is_string(&desc) {
                    return Ok(Value::Unsupported(format!("string array[{n}]")));
                }
                if n > 1 << 20 {
                    return Ok(Value::Unsupported(format!("array[{n}]")));
                }
                // Items keep the stored width, as scalars do.
                macro_rules! rd {
                    ($t:ty, $variant:ident) => {
                        attr.read_raw::<$t>()
                            .map(|v| v.into_iter().map(Value::$variant).collect())
                    };
                }
                let items = match desc {
                    TypeDescriptor::Integer(IntSize::U1) => rd!(i8, I8),
                    TypeDescriptor::Integer(IntSize::U2) => rd!(i16, I16),
                    TypeDescriptor::Integer(IntSize::U4) => rd!(i32, I32),
                    TypeDescriptor::Integer(IntSize::U8) => rd!(i64, I64),
                    TypeDescriptor::Unsigned(IntSize::U1) => rd!(u8, U8),
                    TypeDescriptor::Unsigned(IntSize::U2) => rd!(u16, U16),
                    TypeDescriptor::Unsigned(IntSize::U4) => rd!(u32, U32),
                    TypeDescriptor::Unsigned(IntSize::U8) => rd!(u64, U64),
                    TypeDescriptor::Float(FloatSize::U4) => rd!(f32, F32),
                    TypeDescriptor::Float(FloatSize::U8) => rd!(f64, F64),
                    TypeDescriptor::Boolean => attr
                        .read_raw::<bool>()
                        .map(|v| v.into_iter().map(Value::Bool).collect()),
                    other => return Ok(Value::Unsupported(format!("{other}[{n}]"))),
                };
                return Ok(Value::List(items.ctx("read attribute", here)?));
            }
            d => return Ok(Value::Unsupported(format!("{d}-d array of {desc}"))),
        }
        let v = match desc {
            TypeDescriptor::Integer(IntSize::U1) => attr.read_scalar::<i8>().map(Value::I8),
            TypeDescriptor::Integer(IntSize::U2) => attr.read_scalar::<i16>().map(Value::I16),
            TypeDescriptor::Integer(IntSize::U4) => attr.read_scalar::<i32>().map(Value::I32),
            TypeDescriptor::Integer(IntSize::U8) => attr.read_scalar::<i64>().map(Value::I64),
            TypeDescriptor::Unsigned(IntSize::U1) => attr.read_scalar::<u8>().map(Value::U8),
            TypeDescriptor::Unsigned(IntSize::U2) => attr.read_scalar::<u16>().map(Value::U16),
            TypeDescriptor::Unsigned(IntSize::U4) => attr.read_scalar::<u32>().map(Value::U32),
            TypeDescriptor::Unsigned(IntSize::U8) => attr.read_scalar::<u64>().map(Value::U64),
            TypeDescriptor::Float(FloatSize::U4) => attr.read_scalar::<f32>().map(Value::F32),
            TypeDescriptor::Float(FloatSize::U8) => attr.read_scalar::<f64>().map(Value::F64),
            TypeDescriptor::Boolean => attr.read_scalar::<bool>().map(Value::Bool),
            TypeDescriptor::VarLenUnicode => attr
                .read_scalar::<VarLenUnicode>()
                .map(|s| Value::Str(s.as_str().to_owned())),
            TypeDescriptor::VarLenAscii => attr
                .read_scalar::<VarLenAscii>()
                .map(|s| Value::Str(s.as_str().to_owned())),
            TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_) => {
                ffi::read_fixed_string_attr(self.loc, name)
                    .map(|bytes| Value::Str(String::from_utf8_lossy(&bytes).into_owned()))
            }
            other => Ok(Value::Unsupported(other.to_string())),
        };
        v.ctx("read attribute", here)
    }
}

fn is_string(d: &TypeDescriptor) -> bool {
    matches!(
        d,
        TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_)
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::VarLenUnicode
    )
}

fn date(v: &[i64]) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        i32::try_from(v[0]).ok()?,
        u32::try_from(v[1]).ok()?,
        u32::try_from(v[2]).ok()?,
    )
}

/// Writes `value` as attribute `name` of `loc` with h5pom's encodings (in place when the
/// stored type matches). For layers that manage their own groups (the ECS bridge).
pub fn set_attr(loc: &Location, path: &str, name: &str, value: &Value) -> Result<()> {
    At::new(loc, path).write_value(name, value)
}

/// Writes `value` as a new attribute `name` of `loc`, which the caller created and has not
/// given that name (no check for a stored attribute; one that exists makes it fail). For
/// layers that manage their own groups (the ECS bridge's new entity groups).
pub fn create_attr(loc: &Location, path: &str, name: &str, value: &Value) -> Result<()> {
    At::new(loc, path).fresh(true).write_value(name, value)
}

/// Overwrites attribute `name` of `loc` with `value`, for a caller that wrote a value of the
/// same kind (same [`Value`] variant; same length for a list) under that name last, so the
/// stored type, shape and `-type` marker already fit: a number is one open and one write with
/// no lookup of the stored type, and `None` (stored as 0 with its marker) is left as it is.
/// With any other stored attribute the value is converted to its type, not refused: use
/// [`set_attr`] unless the last write is known. For layers that track what they wrote (the
/// ECS bridge's entity groups).
pub fn overwrite_attr(loc: &Location, path: &str, name: &str, value: &Value) -> Result<()> {
    let at = At::new(loc, path);
    let r = match *value {
        Value::None => return Ok(()),
        Value::I8(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::I16(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::I32(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::I64(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::U8(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::U16(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::U32(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::U64(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::F32(v) => ffi::overwrite_number_attr(loc, name, v),
        Value::F64(v) => ffi::overwrite_number_attr(loc, name, v),
        _ => return at.write_value(name, value),
    };
    r.ctx("write attribute", || at.here(name))
}

/// True if `loc` has the attribute `name` (one cheap HDF5 call, no error stack).
pub fn has_attr(loc: &Location, path: &str, name: &str) -> Result<bool> {
    At::new(loc, path).exists(name)
}

/// Converts a decoded value's error into the store's error for a field.
pub(crate) fn scalar_error(path: &str, field: &str, e: crate::scalar::ScalarError) -> Error {
    use crate::scalar::ScalarError;
    match e {
        ScalarError::Mismatch { expected, found } => Error::TypeMismatch {
            path: path.to_owned(),
            field: field.to_owned(),
            expected: expected.to_owned(),
            found,
        },
        ScalarError::OutOfRange { expected, value } => Error::OutOfRange {
            path: path.to_owned(),
            field: field.to_owned(),
            expected,
            value,
        },
    }
}

/// Reads attribute `name` of `loc` with h5pom's encodings (`None` if it does not exist). For
/// layers that manage their own groups (the ECS bridge).
pub fn get_attr(loc: &Location, path: &str, name: &str) -> Result<Option<Value>> {
    At::new(loc, path).read_value(name)
}
