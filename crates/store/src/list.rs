//! [`ListHandle`]: incremental edits of a stored list field.

use std::marker::PhantomData;
use std::sync::Arc;

use hdf5::Group;

use crate::attr::{At, TYPE_SUFFIX};
use crate::ctx::{SaveCtx, SaveSession, load_in, lock};
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object as ffi;
use crate::field::{Field, read_count, write_count};
use crate::file::FileInner;
use crate::name::{item_name, join};
use crate::object::{Object, Shared};
use crate::scalar::Scalar;

/// A list item: a scalar (stored as attribute `field-i`) or a shared object (sub-group `field-i`).
pub trait ListItem: Field + private::ItemOps {}

mod private {
    use super::*;

    /// How an item moves and disappears (sealed: implemented only here).
    pub trait ItemOps {
        /// True if items are links (so the identity map must follow renames).
        const IS_LINK: bool;
        fn rename(group: &Group, path: &str, from: &str, to: &str) -> Result<()>;
        fn delete(group: &Group, path: &str, name: &str) -> Result<()>;
    }
}
use private::ItemOps;

impl<S: Scalar> ListItem for S {}
impl<O: Object> ListItem for Shared<O> {}

impl<S: Scalar> ItemOps for S {
    const IS_LINK: bool = false;
    fn rename(group: &Group, path: &str, from: &str, to: &str) -> Result<()> {
        let at = At::new(group, path);
        let here = || format!("{path}@{from}");
        ffi::rename_attr(group, from, to).ctx("rename attribute", here)?;
        let (mf, mt) = (format!("{from}{TYPE_SUFFIX}"), format!("{to}{TYPE_SUFFIX}"));
        at.delete(&mt)?;
        if at.exists(&mf)? {
            ffi::rename_attr(group, &mf, &mt).ctx("rename attribute", here)?;
        }
        Ok(())
    }
    fn delete(group: &Group, path: &str, name: &str) -> Result<()> {
        let at = At::new(group, path);
        at.delete(name)?;
        at.delete(&format!("{name}{TYPE_SUFFIX}"))
    }
}

impl<O: Object> ItemOps for Shared<O> {
    const IS_LINK: bool = true;
    fn rename(group: &Group, path: &str, from: &str, to: &str) -> Result<()> {
        ffi::move_link(group, from, to).ctx("rename link", || join(path, from))
    }
    fn delete(group: &Group, path: &str, name: &str) -> Result<()> {
        if ffi::link_exists(group, name).ctx("check link", || join(path, name))? {
            group.unlink(name).ctx("unlink", || join(path, name))?;
        }
        Ok(())
    }
}

/// A stored list field (`field-count`, `field-0`, `field-1`, …) edited in place.
///
/// Every operation touches only the items whose index changes, plus the count.
pub struct ListHandle<T> {
    file: Arc<FileInner>,
    group: Group,
    path: String,
    field: String,
    _item: PhantomData<fn() -> T>,
}

impl<T: ListItem> ListHandle<T> {
    pub(crate) fn new(file: Arc<FileInner>, group: Group, path: String, field: String) -> Self {
        ListHandle {
            file,
            group,
            path,
            field,
            _item: PhantomData,
        }
    }

    fn at(&self) -> At<'_> {
        At::new(&self.group, &self.path)
    }

    fn writable(&self) -> Result<()> {
        if self.file.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                op: "edit list",
                path: self.path.clone(),
            })
        }
    }

    fn bounds(&self, index: usize, len: usize) -> Result<()> {
        if index < len {
            Ok(())
        } else {
            Err(Error::IndexOutOfBounds {
                path: self.path.clone(),
                field: self.field.clone(),
                index,
                len,
            })
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        T::rename(&self.group, &self.path, from, to)?;
        if T::IS_LINK {
            lock(&self.file).renamed(&join(&self.path, from), &join(&self.path, to));
        }
        Ok(())
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize> {
        Ok(read_count(&self.at(), &self.field)?.unwrap_or(0))
    }

    /// True if the list has no items.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads item `index`.
    pub fn get(&self, index: usize) -> Result<T> {
        self.bounds(index, self.len()?)?;
        load_in(&self.file, self.group.clone(), self.path.clone(), |cx| {
            cx.field::<T>(&item_name(&self.field, index))
        })
    }

    /// Reads every item.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        (0..self.len()?).map(|i| self.get(i)).collect()
    }

    fn write(&self, index: usize, value: &T) -> Result<()> {
        let mut session = SaveSession::default();
        SaveCtx::new(
            &self.file,
            self.group.clone(),
            self.path.clone(),
            &mut session,
        )
        .field(&item_name(&self.field, index), value)
    }

    /// Replaces item `index`.
    pub fn set(&self, index: usize, value: &T) -> Result<()> {
        self.writable()?;
        self.bounds(index, self.len()?)?;
        self.write(index, value)
    }

    /// Appends an item.
    pub fn push(&self, value: &T) -> Result<()> {
        self.writable()?;
        let n = self.len()?;
        self.write(n, value)?;
        write_count(&self.at(), &self.field, n + 1)
    }

    /// Inserts an item at `index` (≤ len), shifting later items up by one.
    pub fn insert(&self, index: usize, value: &T) -> Result<()> {
        self.writable()?;
        let n = self.len()?;
        self.bounds(index, n + 1)?;
        for i in (index..n).rev() {
            let (from, to) = (item_name(&self.field, i), item_name(&self.field, i + 1));
            self.rename(&from, &to)?;
        }
        self.write(index, value)?;
        write_count(&self.at(), &self.field, n + 1)
    }

    /// Removes item `index`, shifting later items down by one.
    pub fn remove(&self, index: usize) -> Result<()> {
        self.writable()?;
        let n = self.len()?;
        self.bounds(index, n)?;
        T::delete(&self.group, &self.path, &item_name(&self.field, index))?;
        for i in index + 1..n {
            let (from, to) = (item_name(&self.field, i), item_name(&self.field, i - 1));
            self.rename(&from, &to)?;
        }
        write_count(&self.at(), &self.field, n - 1)
    }
}
