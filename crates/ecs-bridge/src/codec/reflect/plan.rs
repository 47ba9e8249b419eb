//! A reflected type's layout, worked out once at registration from its `TypeInfo`: which
//! leaves it has (scalars, number arrays, glam vectors, unit enums, bevy's `Name`), their
//! dotted names, and how to walk a value to them and build one back.

use std::any::TypeId;

use bevy_ecs::name::Name;
use bevy_reflect::{PartialReflect, Reflect, TypeInfo};
use h5pom_store::pipeline::Element;
use h5pom_store::reexports::hdf5::Group;
use h5pom_store::reexports::ndarray::Ix1;
use h5pom_store::{Scalar, ScalarError, Value};

use crate::registry::Storage;

/// Why a reflected type cannot be stored: the field (dotted name) and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) ty: &'static str,
    pub(crate) field: String,
    pub(crate) field_type: &'static str,
    pub(crate) storage: Storage,
}

/// A scalar Rust type stored as one attribute (or one column cell).
pub(crate) struct ScalarKind {
    id: fn() -> TypeId,
    /// A number (may be an item of an array field).
    pub(crate) numeric: bool,
    /// `f32`: list items read back as `float64` are narrowed (losslessly) first.
    pub(crate) is_f32: bool,
    pub(crate) to: fn(&dyn PartialReflect) -> Option<Value>,
    pub(crate) from: fn(Value) -> Result<Box<dyn PartialReflect>, ScalarError>,
    pub(crate) missing: fn() -> Option<Box<dyn PartialReflect>>,
    /// Numbers only: reads frame `sample` of the 1-D frame series `name` of a history group
    /// (an array field's history) as values.
    pub(crate) frame: Option<FrameRead>,
}

/// Reads frame `.3` of the series `.2` in group `.0` (at `.1`), `None` if there is none.
pub(crate) type FrameRead =
    fn(&Group, &str, &str, usize) -> Result<Option<Vec<Value>>, h5pom_store::Error>;

pub(crate) fn frame<T: Element + Scalar>(
    g: &Group,
    path: &str,
    name: &str,
    sample: usize,
) -> Result<Option<Vec<Value>>, h5pom_store::Error> {
    Ok(
        h5pom_store::series::read_frame::<T, Ix1>(g, path, name, sample)?
            .map(|a| a.iter().map(Scalar::to_value).collect()),
    )
}

fn to<T: Scalar + Reflect>(v: &dyn PartialReflect) -> Option<Value> {
    v.try_downcast_ref::<T>().map(Scalar::to_value)
}

fn from<T: Scalar + Reflect>(v: Value) -> Result<Box<dyn PartialReflect>, ScalarError> {
    T::from_value(v).map(|x| Box::new(x) as Box<dyn PartialReflect>)
}

fn missing<T: Scalar + Reflect>() -> Option<Box<dyn PartialReflect>> {
    T::if_missing().map(|x| Box::new(x) as Box<dyn PartialReflect>)
}

const fn kind<T: Scalar + Reflect>() -> ScalarKind {
    ScalarKind {
        id: TypeId::of::<T>,
        numeric: false,
        is_f32: false,
        to: to::<T>,
        from: from::<T>,
        missing: missing::<T>,
        frame: None,
    }
}

const fn num<T: Scalar + Reflect + Element>(is_f32: bool) -> ScalarKind {
    ScalarKind {
        numeric: true,
        is_f32,
        frame: Some(frame::<T>),
        ..kind::<T>()
    }
}

macro_rules! scalar_kinds {
    (numbers: $($n:ty),*; others: $($o:ty),*) => {
        /// Every scalar a reflected field may be: the types `#[derive(Object)]` stores as one
        /// attribute (dates aside), and `Option` of each.
        static SCALARS: &[ScalarKind] = &[
            $(num::<$n>(false), kind::<Option<$n>>(),)*
            num::<f32>(true), kind::<Option<f32>>(),
            $(kind::<$o>(), kind::<Option<$o>>(),)*
        ];
    };
}

scalar_kinds! {
    numbers: i8, i16, i32, i64, u8, u16, u32, u64, f64;
    others: bool, String
}

fn scalar(id: TypeId) -> Option<&'static ScalarKind> {
    SCALARS.iter().find(|k| (k.id)() == id)
}

/// glam's vectors and quaternion (`f32`), stored as a 1-D array `[x, y, z(, w)]`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Glam {
    Vec2,
    Vec3,
    Vec4,
    Quat,
}

impl Glam {
    fn of(id: TypeId) -> Option<Glam> {
        [
            (TypeId::of::<glam::Vec2>(), Glam::Vec2),
            (TypeId::of::<glam::Vec3>(), Glam::Vec3),
            (TypeId::of::<glam::Vec4>(), Glam::Vec4),
            (TypeId::of::<glam::Quat>(), Glam::Quat),
        ]
        .into_iter()
        .find_map(|(t, g)| (t == id).then_some(g))
    }

    pub(crate) fn len(self) -> usize {
        match self {
            Glam::Vec2 => 2,
            Glam::Vec3 => 3,
            Glam::Vec4 | Glam::Quat => 4,
        }
    }

    pub(crate) fn to_array(self, v: &dyn PartialReflect) -> Option<Vec<f32>> {
        Some(match self {
            Glam::Vec2 => v.try_downcast_ref::<glam::Vec2>()?.to_array().to_vec(),
            Glam::Vec3 => v.try_downcast_ref::<glam::Vec3>()?.to_array().to_vec(),
            Glam::Vec4 => v.try_downcast_ref::<glam::Vec4>()?.to_array().to_vec(),
            Glam::Quat => v.try_downcast_ref::<glam::Quat>()?.to_array().to_vec(),
        })
    }

    /// The value of `xs` (of [`len`](Self::len) items).
    pub(crate) fn build(self, xs: &[f32]) -> Box<dyn PartialReflect> {
        match self {
            Glam::Vec2 => Box::new(glam::Vec2::from_slice(xs)),
            Glam::Vec3 => Box::new(glam::Vec3::from_slice(xs)),
            Glam::Vec4 => Box::new(glam::Vec4::from_slice(xs)),
            Glam::Quat => Box::new(glam::Quat::from_slice(xs)),
        }
    }
}

/// What a leaf of the layout holds.
#[derive(Clone, Copy)]
pub(crate) enum Leaf {
    /// One attribute (one column).
    Scalar(&'static ScalarKind),
    /// `[T; N]` of numbers: one 1-D attribute of `N` items.
    Array {
        item: &'static ScalarKind,
        len: usize,
        info: &'static TypeInfo,
    },
    /// A glam vector or quaternion: one 1-D `float32` attribute.
    Glam(Glam),
    /// An enum whose variants are all unit variants: the variant's name, a string.
    UnitEnum(&'static TypeInfo),
    /// bevy's `Name`: its text, a string (its reflection is not a plain struct).
    Name,
}

impl Leaf {
    /// Fits a column of a table: a scalar, or an array of numbers / a glam vector (a
    /// `[row, N]` column).
    fn is_columnar(&self) -> bool {
        match self {
            Leaf::Scalar(_) | Leaf::UnitEnum(_) | Leaf::Name | Leaf::Glam(_) => true,
            Leaf::Array { item, .. } => item.numeric,
        }
    }
}

/// A node of the layout tree.
pub(crate) enum Node {
    /// A stored value: `index` into [`Plan::names`] and [`Plan::leaves`].
    Leaf(usize),
    /// A struct: its fields, flattened with dotted names.
    Struct {
        info: &'static TypeInfo,
        fields: Vec<(&'static str, Node)>,
    },
}

/// The layout of a reflected type.
pub(crate) struct Plan {
    /// The type tag: the type's short name.
    pub(crate) tag: &'static str,
    /// The stored names of the leaves (without the `<Tag>.` prefix), in walk order.
    pub(crate) names: Vec<String>,
    /// What each leaf holds.
    pub(crate) leaves: Vec<Leaf>,
    pub(crate) root: Node,
}

impl Plan {
    /// Leaf `i`.
    pub(crate) fn leaf(&self, i: usize) -> Option<Leaf> {
        self.leaves.get(i).copied()
    }
}

impl Plan {
    /// The layout of the type described by `info`, or the first field it cannot store with
    /// `storage`.
    pub(crate) fn new(
        tag: &'static str,
        info: &'static TypeInfo,
        storage: Storage,
    ) -> Result<Plan, Refusal> {
        let mut b = Builder {
            tag,
            storage,
            names: Vec::new(),
            leaves: Vec::new(),
        };
        let root = if info.type_id() == TypeId::of::<Name>() {
            // `Name` itself: the layout `#[derive(Object)] struct Name { name: String }` has.
            b.leaf("name".into(), Leaf::Name, info)?
        } else if let TypeInfo::Struct(s) = info {
            let mut fields = Vec::with_capacity(s.field_len());
            for f in s.iter() {
                let child = b.field(f.name().to_owned(), f.type_info(), f.type_path())?;
                fields.push((f.name(), child));
            }
            Node::Struct { info, fields }
        } else {
            return Err(b.refuse(String::new(), info.type_path()));
        };
        Ok(Plan {
            tag,
            names: b.names,
            leaves: b.leaves,
            root,
        })
    }
}

struct Builder {
    tag: &'static str,
    storage: Storage,
    names: Vec<String>,
    leaves: Vec<Leaf>,
}

impl Builder {
    fn refuse(&self, field: String, field_type: &'static str) -> Refusal {
        Refusal {
            ty: self.tag,
            field,
            field_type,
            storage: self.storage,
        }
    }

    fn leaf(&mut self, name: String, leaf: Leaf, info: &'static TypeInfo) -> Result<Node, Refusal> {
        if self.storage == Storage::Table && !leaf.is_columnar() {
            return Err(self.refuse(name, info.type_path()));
        }
        self.names.push(name);
        self.leaves.push(leaf);
        Ok(Node::Leaf(self.leaves.len() - 1))
    }

    fn field(
        &mut self,
        name: String,
        info: Option<&'static TypeInfo>,
        type_path: &'static str,
    ) -> Result<Node, Refusal> {
        let Some(info) = info else {
            return Err(self.refuse(name, type_path));
        };
        let id = info.type_id();
        if let Some(k) = scalar(id) {
            return self.leaf(name, Leaf::Scalar(k), info);
        }
        if id == TypeId::of::<Name>() {
            return self.leaf(name, Leaf::Name, info);
        }
        if let Some(g) = Glam::of(id) {
            return self.leaf(name, Leaf::Glam(g), info);
        }
        match info {
            TypeInfo::Array(a) => match scalar(a.item_ty().id()) {
                Some(item) if item.numeric && a.capacity() > 0 => {
                    let len = a.capacity();
                    self.leaf(name, Leaf::Array { item, len, info }, info)
                }
                _ => Err(self.refuse(name, type_path)),
            },
            TypeInfo::Enum(e)
                if e.variant_len() > 0
                    && e.iter()
                        .all(|v| matches!(v, bevy_reflect::enums::VariantInfo::Unit(_))) =>
            {
                self.leaf(name, Leaf::UnitEnum(info), info)
            }
            TypeInfo::Struct(s) => {
                let mut fields = Vec::with_capacity(s.field_len());
                for f in s.iter() {
                    let child =
                        self.field(format!("{name}.{}", f.name()), f.type_info(), f.type_path())?;
                    fields.push((f.name(), child));
                }
                Ok(Node::Struct { info, fields })
            }
            _ => Err(self.refuse(name, type_path)),
        }
    }
}
