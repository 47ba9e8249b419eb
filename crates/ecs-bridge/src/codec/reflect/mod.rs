//! [`ReflectCodec`]: types deriving bevy's `Reflect`, stored with the layout
//! `#[derive(Object)]` gives the same struct (see `docs/FORMAT.md`, "Reflected types").

mod history;
mod plan;

use std::marker::PhantomData;
use std::sync::Arc;

use bevy_ecs::name::Name;
use bevy_reflect::array::DynamicArray;
use bevy_reflect::enums::{DynamicEnum, DynamicVariant};
use bevy_reflect::structs::DynamicStruct;
use bevy_reflect::{FromReflect, PartialReflect, ReflectRef, TypePath, Typed};
use h5pom_store::reexports::hdf5::Group;
use h5pom_store::{
    DeferredArrays, Embed, Error, File, Folder, RefMap, Row, RowRef, ScalarError, TAG_ATTR, Value,
    get_attr, set_attr,
};

use super::Codec;
use crate::registry::Storage;

pub(crate) use plan::Refusal;
use plan::{Leaf, Node, Plan};

/// A type deriving bevy's `Reflect` (and `FromReflect`, which the derive implements too).
pub(crate) struct ReflectCodec<T> {
    plan: Arc<Plan>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for ReflectCodec<T> {
    fn clone(&self) -> Self {
        ReflectCodec {
            plan: self.plan.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: FromReflect + Typed + TypePath> ReflectCodec<T> {
    /// The codec of `T` stored with `storage`, or the field that cannot be.
    pub(crate) fn new(storage: Storage) -> Result<Self, Refusal> {
        let plan = Plan::new(T::short_type_path(), T::type_info(), storage)?;
        Ok(ReflectCodec {
            plan: Arc::new(plan),
            _t: PhantomData,
        })
    }
}

/// Where a walk is, for errors: the group (or table) path and the name prefix.
struct Here<'a> {
    path: &'a str,
    prefix: &'a str,
}

impl Here<'_> {
    fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn mismatch(&self, name: &str, expected: &str, found: String) -> Error {
        Error::TypeMismatch {
            path: self.path.to_owned(),
            field: self.name(name),
            expected: expected.to_owned(),
            found,
        }
    }

    fn scalar(&self, name: &str, e: ScalarError) -> Error {
        match e {
            ScalarError::Mismatch { expected, found } => self.mismatch(name, expected, found),
            ScalarError::OutOfRange { expected, value } => Error::OutOfRange {
                path: self.path.to_owned(),
                field: self.name(name),
                expected,
                value,
            },
        }
    }
}

impl Plan {
    /// Appends the value of every leaf of `v` to `out`, in [`Plan::names`] order.
    fn encode(
        &self,
        v: &dyn PartialReflect,
        here: &Here<'_>,
        out: &mut Vec<Value>,
    ) -> Result<(), Error> {
        self.encode_node(&self.root, v, here, out)
    }

    fn encode_node(
        &self,
        node: &Node,
        v: &dyn PartialReflect,
        here: &Here<'_>,
        out: &mut Vec<Value>,
    ) -> Result<(), Error> {
        let (index, leaf) = match node {
            Node::Struct { fields, .. } => {
                let ReflectRef::Struct(s) = v.reflect_ref() else {
                    return Err(here.mismatch("", "a struct", v.reflect_type_path().to_owned()));
                };
                for (name, child) in fields {
                    let f = s.field(name).ok_or_else(|| Error::MissingField {
                        path: here.path.to_owned(),
                        field: here.name(name),
                    })?;
                    self.encode_node(child, f, here, out)?;
                }
                return Ok(());
            }
            Node::Leaf(index) => (*index, &self.leaves[*index]),
        };
        let name = &self.names[index];
        let bad = |expected: &str| here.mismatch(name, expected, v.reflect_type_path().to_owned());
        let value = match leaf {
            Leaf::Scalar(k) => (k.to)(v).ok_or_else(|| bad("the registered scalar type"))?,
            Leaf::Array { item, .. } => {
                let ReflectRef::Array(a) = v.reflect_ref() else {
                    return Err(bad("an array"));
                };
                let items: Option<Vec<Value>> = a.iter().map(|x| (item.to)(x)).collect();
                Value::List(items.ok_or_else(|| bad("an array of the registered numbers"))?)
            }
            Leaf::Glam(g) => Value::List(
                g.to_array(v)
                    .ok_or_else(|| bad("a glam vector"))?
                    .into_iter()
                    .map(Value::F32)
                    .collect(),
            ),
            Leaf::UnitEnum(_) => match v.reflect_ref() {
                ReflectRef::Enum(e) => Value::Str(e.variant_name().to_owned()),
                _ => return Err(bad("an enum")),
            },
            Leaf::Name => Value::Str(
                v.try_downcast_ref::<Name>()
                    .ok_or_else(|| bad("bevy_ecs::name::Name"))?
                    .as_str()
                    .to_owned(),
            ),
        };
        out.push(value);
        Ok(())
    }

    /// Builds a value from the stored leaves (`get(i)`: leaf `i`'s value, `None` if absent).
    fn decode<T: FromReflect>(
        &self,
        here: &Here<'_>,
        get: &mut dyn FnMut(usize) -> Result<Option<Value>, Error>,
    ) -> Result<T, Error> {
        let dynamic = self.decode_node(&self.root, here, get)?;
        T::from_reflect(&*dynamic).ok_or_else(|| Error::Corrupt {
            path: here.path.to_owned(),
            reason: format!("the stored fields of {} do not make one", self.tag),
        })
    }

    fn decode_node(
        &self,
        node: &Node,
        here: &Here<'_>,
        get: &mut dyn FnMut(usize) -> Result<Option<Value>, Error>,
    ) -> Result<Box<dyn PartialReflect>, Error> {
        let (index, leaf) = match node {
            Node::Struct { info, fields } => {
                let mut s = DynamicStruct::default();
                s.set_represented_type(Some(info));
                for (name, child) in fields {
                    s.insert_boxed(*name, self.decode_node(child, here, get)?);
                }
                return Ok(Box::new(s));
            }
            Node::Leaf(index) => (*index, &self.leaves[*index]),
        };
        let name = &self.names[index];
        let Some(v) = get(index)? else {
            if let Leaf::Scalar(k) = leaf
                && let Some(d) = (k.missing)()
            {
                return Ok(d);
            }
            return Err(Error::MissingField {
                path: here.path.to_owned(),
                field: here.name(name),
            });
        };
        match leaf {
            Leaf::Scalar(k) => (k.from)(v).map_err(|e| here.scalar(name, e)),
            Leaf::Array { item, len, info } => {
                let items = list(v, *len, here, name)?;
                let boxed = items
                    .into_iter()
                    .map(|x| (item.from)(if item.is_f32 { narrow(x) } else { x }))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| here.scalar(name, e))?;
                let mut a = DynamicArray::new(boxed.into_boxed_slice());
                a.set_represented_type(Some(info));
                Ok(Box::new(a))
            }
            Leaf::Glam(g) => {
                let items = list(v, g.len(), here, name)?;
                let xs = items
                    .into_iter()
                    .map(|x| match narrow(x) {
                        Value::F32(f) => Ok(f),
                        other => Err(here.mismatch(name, "float32", other.type_name())),
                    })
                    .collect::<Result<Vec<f32>, _>>()?;
                Ok(g.build(&xs))
            }
            Leaf::UnitEnum(info) => {
                let Value::Str(s) = v else {
                    return Err(here.mismatch(name, "a variant name (str)", v.type_name()));
                };
                let known = info.as_enum().is_ok_and(|e| e.contains_variant(&s));
                if !known {
                    return Err(here.mismatch(
                        name,
                        &format!("a variant of {}", info.type_path()),
                        format!("{s:?}"),
                    ));
                }
                let mut e = DynamicEnum::new(s, DynamicVariant::Unit);
                e.set_represented_type(Some(info));
                Ok(Box::new(e))
            }
            Leaf::Name => match v {
                Value::Str(s) => Ok(Box::new(Name::new(s))),
                other => Err(here.mismatch(name, "str", other.type_name())),
            },
        }
    }
}

/// The items of a stored list of `len` values.
fn list(v: Value, len: usize, here: &Here<'_>, name: &str) -> Result<Vec<Value>, Error> {
    match v {
        Value::List(items) if items.len() == len => Ok(items),
        other => Err(here.mismatch(
            name,
            &format!("an array of {len} numbers"),
            other.to_string(),
        )),
    }
}

/// A `float64` read back from a `float32` array attribute, as the `f32` it was (exact).
fn narrow(v: Value) -> Value {
    match v {
        // Only when the `f32` converts back to the same `f64` bits: nothing is lost.
        Value::F64(x) if f64::from(x as f32).to_bits() == x.to_bits() || x.is_nan() => {
            Value::F32(x as f32)
        }
        other => other,
    }
}

impl<T: FromReflect + Typed + TypePath + Send + Sync> Codec<T> for ReflectCodec<T> {
    fn tag(&self) -> &'static str {
        self.plan.tag
    }

    fn write_fields<'d>(
        &self,
        _file: &File,
        group: &Group,
        path: &str,
        value: &'d T,
        embed: Embed<'_>,
        _sink: &mut DeferredArrays<'d>,
    ) -> h5pom_store::Result<()> {
        self.write_attrs(group, path, embed.prefix.unwrap_or(""), value)
    }

    fn read_fields(
        &self,
        _file: &File,
        group: &Group,
        path: &str,
        embed: Embed<'_>,
    ) -> h5pom_store::Result<T> {
        let here = Here {
            path,
            prefix: embed.prefix.unwrap_or(""),
        };
        let names = &self.plan.names;
        self.plan
            .decode(&here, &mut |i| get_attr(group, path, &here.name(&names[i])))
    }

    fn write_row(
        &self,
        value: &T,
        row: &mut Row,
        _refs: Option<&dyn RefMap>,
    ) -> h5pom_store::Result<()> {
        if row.names.is_empty() {
            row.names.extend(self.plan.names.iter().cloned());
        }
        let here = Here {
            path: "",
            prefix: "",
        };
        self.plan
            .encode(value.as_partial_reflect(), &here, &mut row.values)
    }

    /// Every reflected field is a leaf value of the plan, written as one attribute per plan
    /// name by [`write_fields`](Codec::write_fields) and as the same values by
    /// [`write_row`](Codec::write_row): group storage may write the row's values in place.
    fn columnar(&self) -> bool {
        true
    }

    fn read_row(&self, row: RowRef<'_>, _refs: Option<&dyn RefMap>) -> h5pom_store::Result<T> {
        let here = Here {
            path: "",
            prefix: "",
        };
        let names = &self.plan.names;
        let RowRef {
            names: cols,
            values,
        } = row;
        self.plan.decode(&here, &mut |i| {
            Ok(cols
                .iter()
                .position(|c| *c == names[i])
                .and_then(|j| values.get_mut(j))
                .and_then(Option::take))
        })
    }

    fn insert(&self, folder: &Folder, value: &T) -> h5pom_store::Result<()> {
        let tag = self.plan.tag;
        if folder.contains(tag)? {
            folder.remove(tag)?;
        }
        let f = folder.create_folder(tag)?;
        set_attr(
            f.hdf5_group(),
            f.path(),
            TAG_ATTR,
            &Value::Str(tag.to_owned()),
        )?;
        self.write_attrs(f.hdf5_group(), f.path(), "", value)
    }

    fn save(&self, folder: &Folder, value: &T) -> h5pom_store::Result<()> {
        let f = folder.folder(self.plan.tag)?;
        self.write_attrs(f.hdf5_group(), f.path(), "", value)
    }
}

impl<T: FromReflect + Typed + TypePath + Send + Sync> ReflectCodec<T> {
    /// Writes every leaf of `value` as the attribute `<prefix><name>` of `group`.
    fn write_attrs(
        &self,
        group: &Group,
        path: &str,
        prefix: &str,
        value: &T,
    ) -> h5pom_store::Result<()> {
        let here = Here { path, prefix };
        let mut values = Vec::with_capacity(self.plan.names.len());
        self.plan
            .encode(value.as_partial_reflect(), &here, &mut values)?;
        for (name, v) in self.plan.names.iter().zip(&values) {
            set_attr(group, path, &here.name(name), v)?;
        }
        Ok(())
    }
}
