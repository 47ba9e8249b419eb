//! Reflected types in history mode: scalar leaves are columns of the history table (or
//! value series of a resource), array leaves (`[T; N]`, glam) frame series, as an array field
//! of a derived type is.

use std::borrow::Cow;

use bevy_reflect::{FromReflect, TypePath, Typed};
use h5pom_store::pipeline::Dtype;
use h5pom_store::{CapturedArray, Error, Row, RowRef, Value};

use super::plan::{Leaf, frame};
use super::{Here, ReflectCodec};
use crate::history::{Frames, RowCodec};
use crate::ids::IdMap;

/// The dtype and native-endian bytes of a list of numbers of one type.
fn array_bytes(items: &[Value]) -> Option<(Dtype, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut dtype = None;
    for v in items {
        let (d, b): (Dtype, Vec<u8>) = match *v {
            Value::I8(x) => (Dtype::I8, x.to_ne_bytes().to_vec()),
            Value::I16(x) => (Dtype::I16, x.to_ne_bytes().to_vec()),
            Value::I32(x) => (Dtype::I32, x.to_ne_bytes().to_vec()),
            Value::I64(x) => (Dtype::I64, x.to_ne_bytes().to_vec()),
            Value::U8(x) => (Dtype::U8, x.to_ne_bytes().to_vec()),
            Value::U16(x) => (Dtype::U16, x.to_ne_bytes().to_vec()),
            Value::U32(x) => (Dtype::U32, x.to_ne_bytes().to_vec()),
            Value::U64(x) => (Dtype::U64, x.to_ne_bytes().to_vec()),
            Value::F32(x) => (Dtype::F32, x.to_ne_bytes().to_vec()),
            Value::F64(x) => (Dtype::F64, x.to_ne_bytes().to_vec()),
            _ => return None,
        };
        if dtype.is_some_and(|t| t != d) {
            return None;
        }
        dtype = Some(d);
        bytes.extend_from_slice(&b);
    }
    dtype.map(|d| (d, bytes))
}

impl<T: FromReflect + Typed + TypePath + Send + Sync> RowCodec<T> for ReflectCodec<T> {
    fn encode<'d>(
        &self,
        c: &'d T,
        _ids: &IdMap,
        row: &mut Row,
        arrays: &mut Vec<CapturedArray<'d>>,
    ) -> h5pom_store::Result<bool> {
        let here = Here {
            path: "",
            prefix: "",
        };
        let mut values = Vec::with_capacity(self.plan.names.len());
        self.plan
            .encode(c.as_partial_reflect(), &here, &mut values)?;
        let record = row.names.is_empty();
        for (name, v) in self.plan.names.iter().zip(values) {
            match v {
                Value::List(items) => {
                    let (dtype, bytes) =
                        array_bytes(&items).ok_or_else(|| Error::TypeMismatch {
                            path: String::new(),
                            field: name.clone(),
                            expected: "numbers of one type".into(),
                            found: Value::List(items.clone()).to_string(),
                        })?;
                    arrays.push(CapturedArray {
                        name: name.clone(),
                        dtype,
                        shape: vec![items.len()],
                        bytes: Cow::Owned(bytes),
                    });
                }
                v => {
                    if record {
                        row.names.push(name.clone());
                    }
                    row.values.push(v);
                }
            }
        }
        Ok(true)
    }

    fn decode(&self, row: RowRef<'_>, _ids: &IdMap, frames: Frames<'_>) -> h5pom_store::Result<T> {
        let here = Here {
            path: frames.map_or("", |f| f.1),
            prefix: "",
        };
        let plan = &self.plan;
        let RowRef {
            names: cols,
            values,
        } = row;
        plan.decode(&here, &mut |i| {
            let name = &plan.names[i];
            match plan.leaf(i) {
                Some(Leaf::Array { item, .. }) => match (frames, item.frame) {
                    (Some((g, path, sample)), Some(read)) => {
                        Ok(read(g, path, name, sample)?.map(Value::List))
                    }
                    _ => Ok(None),
                },
                Some(Leaf::Glam(_)) => match frames {
                    Some((g, path, sample)) => {
                        Ok(frame::<f32>(g, path, name, sample)?.map(Value::List))
                    }
                    None => Ok(None),
                },
                _ => Ok(cols
                    .iter()
                    .position(|c| c == name)
                    .and_then(|j| values.get_mut(j))
                    .and_then(Option::take)),
            }
        })
    }
}
