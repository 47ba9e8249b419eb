//! [`Object`]: a Rust type mapped to an HDF5 group; [`Shared`]: a reference to one.

use std::any::Any;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hdf5::Group;

use crate::attr::At;
use crate::ctx::{LoadCtx, SaveCtx};
use crate::error::{Error, Result};
use crate::value::Value;

/// Name of the attribute holding an object's type tag (the original h5pom's `loader-key`).
pub const TAG_ATTR: &str = "loader-key";

/// Reads a group's type tag, if it has one.
pub(crate) fn read_tag(group: &Group, path: &str) -> Result<Option<String>> {
    match (At::new(group, path)).read_value(TAG_ATTR)? {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(other) => Err(Error::Corrupt {
            path: format!("{path}@{TAG_ATTR}"),
            reason: format!("type tag is {}, not a string", other.type_name()),
        }),
    }
}

/// Checks a group's type tag against `O`'s.
pub(crate) fn check_tag<O: Object>(group: &Group, path: &str) -> Result<()> {
    let found = read_tag(group, path)?;
    if found.as_deref() != Some(O::TYPE_TAG) {
        return Err(Error::WrongTag {
            path: path.to_owned(),
            expected: O::TYPE_TAG.to_owned(),
            found,
        });
    }
    Ok(())
}

/// A Rust type stored as an HDF5 group. Derive it with `#[derive(h5pom::Object)]`.
///
/// Each field is one [`Field`](crate::Field): scalars become attributes, arrays datasets,
/// [`Shared`] references sub-groups or hard links, lists and dicts prefixed families.
pub trait Object: Send + Sync + Sized + 'static {
    /// The type tag stored in the group's `loader-key` attribute. Stable across renames of the
    /// Rust type: it defaults to the type's name and can be set with `#[h5pom(tag = "…")]`.
    const TYPE_TAG: &'static str;
    /// The names of the persisted fields, in declaration order.
    const FIELDS: &'static [&'static str];
    /// The first persisted field that cannot be a column of a table (an array, a sub-object,
    /// a list or a dict: see [`Field::COLUMNAR`](crate::Field::COLUMNAR)); `None` if the
    /// object can be stored as a table row. The derive computes it.
    const NOT_COLUMNAR: Option<&'static str> = None;
    /// Writes every field into the group.
    fn save_fields<'d>(&'d self, cx: &mut SaveCtx<'_, 'd>) -> Result<()>;
    /// Writes only the fields that differ from `old` (what the file is known to hold).
    fn save_changed<'d>(&'d self, old: &Self, cx: &mut SaveCtx<'_, 'd>) -> Result<()>;
    /// Reads every field from the group.
    fn load_fields(cx: &mut LoadCtx<'_>) -> Result<Self>;
}

/// A shared, mutable reference to an object: the Rust side of an HDF5 hard link.
///
/// Two fields holding clones of one `Shared` are stored as one group and a hard link, and load
/// back as one `Shared` again (the file's identity map). Cycles are allowed.
pub struct Shared<O>(pub(crate) Arc<SharedCell<O>>);

pub(crate) struct SharedCell<O> {
    // `None` only while the object is being loaded (so that cycles can point at it).
    value: RwLock<Option<O>>,
}

impl<O: Object> Shared<O> {
    /// Wraps a new object.
    pub fn new(value: O) -> Self {
        Shared(Arc::new(SharedCell {
            value: RwLock::new(Some(value)),
        }))
    }

    pub(crate) fn empty() -> Self {
        Shared(Arc::new(SharedCell {
            value: RwLock::new(None),
        }))
    }

    pub(crate) fn fill(&self, value: O) {
        *self.0.value.write().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }

    /// Shared read access.
    ///
    /// # Panics
    /// Only if called on an object still being loaded, which safe code outside the loader
    /// cannot observe.
    pub fn read(&self) -> SharedRead<'_, O> {
        SharedRead(self.0.value.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Exclusive write access. Changes reach the file on the next save of an object that
    /// references this one (or of this one).
    pub fn write(&self) -> SharedWrite<'_, O> {
        SharedWrite(self.0.value.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// True if both point to the same object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }

    pub(crate) fn erased(&self) -> Arc<dyn Any + Send + Sync> {
        self.0.clone()
    }

    pub(crate) fn from_erased(a: Arc<dyn Any + Send + Sync>) -> Option<Self> {
        a.downcast::<SharedCell<O>>().ok().map(Shared)
    }
}

impl<O> Clone for Shared<O> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<O: Object + std::fmt::Debug> std::fmt::Debug for Shared<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.value.try_read() {
            Ok(g) => match &*g {
                Some(v) => f.debug_tuple("Shared").field(v).finish(),
                None => f.write_str("Shared(<loading>)"),
            },
            Err(_) => f.write_str("Shared(<locked>)"),
        }
    }
}

/// Read guard of a [`Shared`].
pub struct SharedRead<'a, O>(RwLockReadGuard<'a, Option<O>>);

impl<O> std::ops::Deref for SharedRead<'_, O> {
    type Target = O;
    fn deref(&self) -> &O {
        self.0
            .as_ref()
            .expect("h5pom: Shared object read while it is being loaded")
    }
}

/// Write guard of a [`Shared`].
pub struct SharedWrite<'a, O>(RwLockWriteGuard<'a, Option<O>>);

impl<O> std::ops::Deref for SharedWrite<'_, O> {
    type Target = O;
    fn deref(&self) -> &O {
        self.0
            .as_ref()
            .expect("h5pom: Shared object read while it is being loaded")
    }
}

impl<O> std::ops::DerefMut for SharedWrite<'_, O> {
    fn deref_mut(&mut self) -> &mut O {
        self.0
            .as_mut()
            .expect("h5pom: Shared object written while it is being loaded")
    }
}
