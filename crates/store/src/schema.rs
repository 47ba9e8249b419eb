//! [`Schema`]: the mapped types a file may contain, by type tag.

use std::any::Any;

use crate::ctx::LoadCtx;
use crate::error::{Error, Result};
use crate::object::Object;

type LoadFn = fn(&mut LoadCtx<'_>) -> Result<Box<dyn Any + Send + Sync>>;

#[derive(Clone)]
struct Entry {
    tag: &'static str,
    rust_name: &'static str,
    load: LoadFn,
}

/// The list of mapped types a file is opened with (h5pom's `open(name, [Person, …])`).
///
/// Typed access ([`Folder::get`](crate::Folder::get)) works for any [`Object`] type;
/// the schema is what lets [`Folder::load_any`](crate::Folder::load_any) turn a group into the
/// right Rust type from its tag alone. A group whose tag is not in the schema loads as a
/// [`GenericObject`](crate::GenericObject).
#[derive(Clone, Default)]
pub struct Schema {
    types: Vec<Entry>,
}

impl Schema {
    /// An empty schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `O`.
    ///
    /// # Panics
    /// If another registered type has the same tag; see [`try_with`](Self::try_with).
    pub fn with<O: Object>(self) -> Self {
        match self.try_with::<O>() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Adds `O`, or fails with [`Error::DuplicateTag`] if its tag is taken by another type.
    pub fn try_with<O: Object>(mut self) -> Result<Self> {
        self.register::<O>()?;
        Ok(self)
    }

    /// Adds `O` in place. Registering the same type twice is a no-op.
    pub fn register<O: Object>(&mut self) -> Result<()> {
        let rust_name = std::any::type_name::<O>();
        if let Some(e) = self.types.iter().find(|e| e.tag == O::TYPE_TAG) {
            if e.rust_name == rust_name {
                return Ok(());
            }
            return Err(Error::DuplicateTag {
                tag: O::TYPE_TAG.to_owned(),
                first: e.rust_name,
                second: rust_name,
            });
        }
        self.types.push(Entry {
            tag: O::TYPE_TAG,
            rust_name,
            load: |cx| Ok(Box::new(O::load_fields(cx)?)),
        });
        Ok(())
    }

    /// True if a type with this tag is registered.
    pub fn contains(&self, tag: &str) -> bool {
        self.types.iter().any(|e| e.tag == tag)
    }

    /// The registered tags, in registration order.
    pub fn tags(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.iter().map(|e| e.tag)
    }

    pub(crate) fn loader(&self, tag: &str) -> Option<LoadFn> {
        self.types.iter().find(|e| e.tag == tag).map(|e| e.load)
    }
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tags()).finish()
    }
}
