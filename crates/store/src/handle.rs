//! [`Handle`]: a live reference to one stored object, with field-level reads and writes.

use std::marker::PhantomData;
use std::sync::Arc;

use hdf5::Group;
use ndarray::Dimension;

use crate::array::LazyArray;
use crate::ctx::{SaveCtx, SaveSession, load_in};
use crate::error::{Error, Result};
use crate::field::Field;
use crate::file::FileInner;
use crate::folder::Folder;
use crate::list::{ListHandle, ListItem};
use crate::object::Object;
use crate::pipeline::Element;

/// A stored object of type `O`: read or write single fields without loading the whole object.
///
/// `#[derive(Object)]` also generates an extension trait (`<Type>Ext`) with one getter and one
/// `set_<field>` per field on `Handle<Type>`, so `joe.set_age(23)?` writes exactly one attribute.
pub struct Handle<O> {
    file: Arc<FileInner>,
    group: Group,
    path: String,
    _type: PhantomData<fn() -> O>,
}

impl<O> Clone for Handle<O> {
    fn clone(&self) -> Self {
        Handle {
            file: self.file.clone(),
            group: self.group.clone(),
            path: self.path.clone(),
            _type: PhantomData,
        }
    }
}

impl<O: Object> Handle<O> {
    pub(crate) fn new(file: Arc<FileInner>, group: Group, path: String) -> Self {
        Handle {
            file,
            group,
            path,
            _type: PhantomData,
        }
    }

    /// The object's path in the file.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn writable(&self, op: &'static str) -> Result<()> {
        if self.file.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                op,
                path: self.path.clone(),
            })
        }
    }

    fn check_field(&self, field: &str) -> Result<()> {
        if O::FIELDS.contains(&field) {
            Ok(())
        } else {
            Err(Error::InvalidName {
                name: field.to_owned(),
                reason: "not a persisted field of this type",
            })
        }
    }

    /// Loads the whole object.
    pub fn load(&self) -> Result<O> {
        load_in(
            &self.file,
            self.group.clone(),
            self.path.clone(),
            O::load_fields,
        )
    }

    /// Writes every field of `obj` over the stored object.
    pub fn save(&self, obj: &O) -> Result<()> {
        self.writable("save")?;
        let mut session = SaveSession::default();
        obj.save_fields(&mut SaveCtx::new(
            &self.file,
            self.group.clone(),
            self.path.clone(),
            &mut session,
        ))
    }

    /// Writes only the fields of `new` that differ from `old` (what the file holds).
    pub fn save_changed(&self, old: &O, new: &O) -> Result<()> {
        self.writable("save")?;
        let mut session = SaveSession::default();
        new.save_changed(
            old,
            &mut SaveCtx::new(
                &self.file,
                self.group.clone(),
                self.path.clone(),
                &mut session,
            ),
        )
    }

    /// Loads the object, lets `f` change it, and writes back the fields that changed.
    /// Referenced [`Shared`](crate::Shared) objects are always rewritten (their contents may
    /// have changed through other clones).
    pub fn update<R>(&self, f: impl FnOnce(&mut O) -> R) -> Result<R>
    where
        O: Clone,
    {
        let old = self.load()?;
        let mut new = old.clone();
        let r = f(&mut new);
        self.save_changed(&old, &new)?;
        Ok(r)
    }

    /// Reads one field.
    pub fn get<F: Field>(&self, field: &str) -> Result<F> {
        self.check_field(field)?;
        load_in(&self.file, self.group.clone(), self.path.clone(), |cx| {
            cx.field(field)
        })
    }

    /// Writes one field.
    pub fn set<F: Field>(&self, field: &str, value: &F) -> Result<()> {
        self.check_field(field)?;
        self.writable("write field")?;
        let mut session = SaveSession::default();
        SaveCtx::new(
            &self.file,
            self.group.clone(),
            self.path.clone(),
            &mut session,
        )
        .field(field, value)
    }

    /// An array field, unread: its shape is known, and it can be read whole or sliced.
    pub fn array<T: Element, D: Dimension>(&self, field: &str) -> Result<LazyArray<T, D>> {
        self.get::<LazyArray<T, D>>(field)
    }

    /// A list field, for incremental updates (push, insert, remove, set) that rewrite only the
    /// items that move.
    pub fn list<T: ListItem>(&self, field: &str) -> Result<ListHandle<T>> {
        self.check_field(field)?;
        Ok(ListHandle::new(
            self.file.clone(),
            self.group.clone(),
            self.path.clone(),
            field.to_owned(),
        ))
    }

    /// The object's group as an untyped folder (its attributes and children, by name).
    pub fn as_folder(&self) -> Folder {
        Folder::new(self.file.clone(), self.group.clone(), self.path.clone())
    }
}

impl<O> std::fmt::Debug for Handle<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle<{}>({})", std::any::type_name::<O>(), self.path)
    }
}
