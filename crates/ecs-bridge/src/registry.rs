//! [`Registry`]: which components and resources are persisted, and how.

use std::sync::Arc;

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom_store::{Object, is_valid_key};

use crate::codec::DeriveCodec;
use crate::component::{ComponentSync, GroupSync};
use crate::error::{EcsError, Result};
use crate::hierarchy::{CHILD_OF_TAG, HierarchySync};
use crate::history::{ChildOfCodec, History, HistoryRes, HistoryRows, HistorySync, RowCodec};
use crate::resource::{ResSync, ResourceSync};
use crate::table::TableSync;

type CompFactory = Arc<dyn Fn() -> Box<dyn ComponentSync> + Send + Sync>;
type ResFactory = Arc<dyn Fn() -> Box<dyn ResourceSync> + Send + Sync>;
type HistFactory = Arc<dyn Fn() -> Box<dyn HistorySync> + Send + Sync>;
/// Fresh sync state for every registered type.
pub(crate) type Syncs = (Vec<Box<dyn ComponentSync>>, Vec<Box<dyn ResourceSync>>);

/// How a component type is laid out in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// In each entity's group: scalar fields as attributes `<Tag>.<field>`, arrays as
    /// datasets, references as persistent ids. Any field kind. Each changed component costs
    /// about one HDF5 call per field.
    Group,
    /// In the column table `/ecs/tables/<Tag>`: one dataset per field, one row per entity;
    /// a flush writes only the chunks (of at most 16,384 rows) that hold changed rows.
    /// Scalar fields only; for components with thousands of instances.
    Table,
}

/// The persisted component and resource types (h5pom's schema, for a world).
///
/// ```
/// # use bevy_ecs::prelude::*;
/// # #[derive(Component, h5pom_derive::Object)] #[h5pom(crate = "h5pom_store")] struct Position { x: f64, y: f64 }
/// # #[derive(Component, h5pom_derive::Object)] #[h5pom(crate = "h5pom_store")] struct Name { name: String }
/// # #[derive(Resource, h5pom_derive::Object)] #[h5pom(crate = "h5pom_store")] struct Clock { t: f64 }
/// let registry = h5pom_ecs::Registry::new()
///     .component::<Name>()       // one group per entity
///     .table::<Position>()       // a column table
///     .resource::<Clock>()
///     .hierarchy();              // ChildOf links
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    pub(crate) comps: Vec<(&'static str, CompFactory)>,
    pub(crate) res: Vec<(&'static str, ResFactory)>,
    /// The history of every registered type (used when a sync keeps history).
    pub(crate) hists: Vec<HistFactory>,
    /// What registration refused, reported by the first use of the registry (create,
    /// resume, load).
    pub(crate) errors: Vec<Refused>,
}

/// A type the registry refused (turned into an [`EcsError`] when the registry is used).
#[derive(Clone, Debug)]
pub(crate) enum Refused {
    /// A tag that is not a valid key.
    Tag(String),
    /// A table component with a field that cannot be a column.
    NotColumnar {
        component: &'static str,
        field: &'static str,
    },
    /// A reflected type with a field that cannot be stored.
    #[cfg(feature = "reflect")]
    Field(crate::codec::reflect::Refusal),
}

impl From<&Refused> for EcsError {
    fn from(r: &Refused) -> Self {
        match r {
            Refused::Tag(tag) => EcsError::InvalidTag { tag: tag.clone() },
            &Refused::NotColumnar { component, field } => {
                EcsError::NotColumnar { component, field }
            }
            #[cfg(feature = "reflect")]
            Refused::Field(f) => EcsError::UnsupportedField {
                ty: f.ty,
                field: f.field.clone(),
                field_type: f.field_type,
                storage: f.storage,
            },
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn check(&mut self, tag: &'static str) {
        if !is_valid_key(tag) {
            self.errors.push(Refused::Tag(tag.to_owned()));
        }
    }

    /// Persists component `C` in each entity's group ([`Storage::Group`]).
    pub fn component<C: Component + Object>(self) -> Self {
        self.component_as::<C>(Storage::Group)
    }

    /// Persists component `C` in a column table ([`Storage::Table`]).
    pub fn table<C: Component + Object>(self) -> Self {
        self.component_as::<C>(Storage::Table)
    }

    /// Persists component `C` with the given storage.
    /// A table component must have only fields that fit a column ([`Object::NOT_COLUMNAR`]):
    /// one that does not is refused here, and the first use of the registry (create, resume,
    /// load) fails with [`EcsError::NotColumnar`] naming the field.
    pub fn component_as<C: Component + Object>(mut self, storage: Storage) -> Self {
        self.check(C::TYPE_TAG);
        if let (Storage::Table, Some(field)) = (storage, C::NOT_COLUMNAR) {
            self.errors.push(Refused::NotColumnar {
                component: C::TYPE_TAG,
                field,
            });
            return self;
        }
        let f: CompFactory = match storage {
            Storage::Group => Arc::new(|| Box::new(GroupSync::<C, _>::new(DeriveCodec))),
            Storage::Table => Arc::new(|| Box::new(TableSync::<C, _>::new(DeriveCodec))),
        };
        self.comps.push((C::TYPE_TAG, f));
        self.push_component_history::<C, _>(C::TYPE_TAG, DeriveCodec);
        self
    }

    /// Keeps the history of component `C` (when a sync keeps history), encoded by `codec`.
    pub(crate) fn push_component_history<C: Component, K: RowCodec<C> + Clone>(
        &mut self,
        tag: &'static str,
        codec: K,
    ) {
        self.hists.push(Arc::new(move || {
            Box::new(HistoryRows::<C, K>::new(tag, codec.clone()))
        }));
    }

    /// Keeps the history of resource `R` (when a sync keeps history), encoded by `codec`.
    pub(crate) fn push_resource_history<R: Resource, K: RowCodec<R> + Clone>(
        &mut self,
        tag: &'static str,
        codec: K,
    ) {
        self.hists.push(Arc::new(move || {
            Box::new(HistoryRes::<R, K>::new(tag, codec.clone()))
        }));
    }

    /// Persists resource `R` as the group `/ecs/resources/<Tag>`.
    pub fn resource<R: Resource + Object>(mut self) -> Self {
        self.check(R::TYPE_TAG);
        self.res.push((
            R::TYPE_TAG,
            Arc::new(|| Box::new(ResSync::<R, _>::new(DeriveCodec))),
        ));
        self.push_resource_history::<R, _>(R::TYPE_TAG, DeriveCodec);
        self
    }

    /// Persists the parent/child hierarchy (`ChildOf`, and so `Children`) between persisted
    /// entities.
    pub fn hierarchy(mut self) -> Self {
        self.comps
            .push((CHILD_OF_TAG, Arc::new(|| Box::new(HierarchySync::new()))));
        self.hists.push(Arc::new(|| {
            Box::new(HistoryRows::<ChildOf, _>::new(CHILD_OF_TAG, ChildOfCodec))
        }));
        self
    }

    /// Checks what registration recorded: every tag valid and unique, every table type
    /// columnar, every reflected field storable. [`H5Sync::create`](crate::H5Sync::create),
    /// `resume` and `load` call it first.
    pub fn validate(&self) -> Result<()> {
        if let Some(refused) = self.errors.first() {
            return Err(refused.into());
        }
        let mut tags: Vec<&str> = self
            .comps
            .iter()
            .map(|c| c.0)
            .chain(self.res.iter().map(|r| r.0))
            .collect();
        tags.sort_unstable();
        if let Some(w) = tags.windows(2).find(|w| w[0] == w[1]) {
            return Err(EcsError::DuplicateTag {
                tag: w[0].to_owned(),
            });
        }
        Ok(())
    }

    /// Fresh history state for every type `history` keeps.
    pub(crate) fn histories(&self, history: &History) -> Vec<Box<dyn HistorySync>> {
        self.hists
            .iter()
            .map(|f| f())
            .filter(|h| crate::history::wanted(history, h.tag()))
            .collect()
    }

    pub(crate) fn instantiate(&self) -> Syncs {
        (
            self.comps.iter().map(|(_, f)| f()).collect(),
            self.res.iter().map(|(_, f)| f()).collect(),
        )
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field(
                "components",
                &self.comps.iter().map(|c| c.0).collect::<Vec<_>>(),
            )
            .field(
                "resources",
                &self.res.iter().map(|r| r.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}
