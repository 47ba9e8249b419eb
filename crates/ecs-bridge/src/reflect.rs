//! Registering types that derive bevy's `Reflect` (feature `reflect`): no h5pom derive needed,
//! the layout is the one `#[derive(Object)]` gives the same struct (see `docs/FORMAT.md`,
//! "Reflected types").

use std::sync::Arc;

use bevy_ecs::prelude::*;
use bevy_reflect::{FromReflect, Typed};

use crate::codec::ReflectCodec;
use crate::component::GroupSync;
use crate::registry::{Refused, Registry, Storage};
use crate::resource::ResSync;
use crate::table::TableSync;

impl Registry {
    /// Persists component `C`, which derives bevy's `Reflect`, in each entity's group
    /// ([`Storage::Group`]), under the tag `C`'s short type name (`Transform`, `Name`).
    ///
    /// Fields may be numbers, `bool`, `String`, `Option` of those, `[T; N]` of numbers, glam's
    /// `Vec2`/`Vec3`/`Vec4`/`Quat`, enums of unit variants, bevy's `Name` and plain structs
    /// of these (flattened with dotted names). Any other field makes the first use of the
    /// registry fail with [`EcsError::UnsupportedField`](crate::EcsError::UnsupportedField)
    /// naming it. History mode keeps reflected types as derived ones (skip one with
    /// [`History::skip_tag`](crate::History::skip_tag)).
    ///
    /// ```
    /// # use bevy_ecs::prelude::*;
    /// # use bevy_reflect::Reflect;
    /// #[derive(Component, Reflect)]
    /// struct Velocity { x: f32, y: f32 }
    ///
    /// let registry = h5pom_ecs::Registry::new()
    ///     .reflect::<Name>()          // bevy's own components
    ///     .reflect::<Velocity>();
    /// ```
    pub fn reflect<C: Component + FromReflect + Typed>(self) -> Self {
        self.reflect_as::<C>(Storage::Group)
    }

    /// Persists component `C`, which derives bevy's `Reflect`, in a column table
    /// ([`Storage::Table`]). Every field must fit one column (a scalar, a unit enum or a
    /// `Name`, possibly inside nested structs); arrays and glam vectors are refused with
    /// [`EcsError::UnsupportedField`](crate::EcsError::UnsupportedField).
    pub fn reflect_table<C: Component + FromReflect + Typed>(self) -> Self {
        self.reflect_as::<C>(Storage::Table)
    }

    /// Persists component `C`, which derives bevy's `Reflect`, with the given storage.
    pub fn reflect_as<C: Component + FromReflect + Typed>(mut self, storage: Storage) -> Self {
        let codec = match ReflectCodec::<C>::new(storage) {
            Ok(codec) => codec,
            Err(refusal) => {
                self.errors.push(Refused::Field(refusal));
                return self;
            }
        };
        let tag = C::short_type_path();
        self.check(tag);
        let c = codec.clone();
        self.comps.push((
            tag,
            match storage {
                Storage::Group => Arc::new(move || Box::new(GroupSync::<C, _>::new(c.clone()))),
                Storage::Table => Arc::new(move || Box::new(TableSync::<C, _>::new(c.clone()))),
            },
        ));
        self.push_component_history::<C, _>(tag, codec);
        self
    }

    /// Persists resource `R`, which derives bevy's `Reflect`, as the group
    /// `/ecs/resources/<Tag>` (fields as for [`reflect`](Self::reflect)).
    pub fn reflect_resource<R: Resource + FromReflect + Typed>(mut self) -> Self {
        let codec = match ReflectCodec::<R>::new(Storage::Group) {
            Ok(codec) => codec,
            Err(refusal) => {
                self.errors.push(Refused::Field(refusal));
                return self;
            }
        };
        let tag = R::short_type_path();
        self.check(tag);
        let c = codec.clone();
        self.res.push((
            tag,
            Arc::new(move || Box::new(ResSync::<R, _>::new(c.clone()))),
        ));
        self.push_resource_history::<R, _>(tag, codec);
        self
    }
}
