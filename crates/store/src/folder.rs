//! [`Folder`]: a group used as a container of named objects (the root, or any plain group).

use std::any::Any;
use std::sync::Arc;

use hdf5::Group;

use crate::attr::At;
use crate::ctx::{LoadSession, SaveCtx, SaveSession, load_in, load_shared_group};
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object as ffi;
use crate::file::FileInner;
use crate::generic::GenericObject;
use crate::handle::Handle;
use crate::name::{RESERVED_PREFIX, join, validate_object_name};
use crate::object::{Object, Shared, TAG_ATTR, check_tag, read_tag};
use crate::scalar::Scalar;
use crate::value::Value;

/// A group holding named objects: the file's root, or a plain sub-group.
///
/// The Rust side of the original h5pom's `Folder`: insert an object under a name, get it back,
/// remove it, test and list names, and read and write scalar attributes.
#[derive(Clone)]
pub struct Folder {
    pub(crate) file: Arc<FileInner>,
    pub(crate) group: Group,
    pub(crate) path: String,
}

/// One entry of a folder listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The link name.
    pub name: String,
    /// What the link points to.
    pub kind: EntryKind,
}

/// What a folder entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A group; `tag` is its `loader-key`, if any.
    Group {
        /// The type tag.
        tag: Option<String>,
    },
    /// A dataset.
    Dataset,
    /// Anything else (a named datatype, a dangling or external link).
    Other,
}

/// An object loaded by tag alone: a registered Rust type, or a generic object.
#[non_exhaustive]
pub enum AnyObject {
    /// The tag is in the schema: a value of the registered type.
    Typed {
        /// The type tag.
        tag: String,
        /// The value; see [`AnyObject::downcast`].
        value: Box<dyn Any + Send + Sync>,
    },
    /// Unknown or missing tag: the group's contents, untyped.
    Generic(Box<GenericObject>),
}

impl AnyObject {
    /// The registered type's value, or `self` back if it is something else.
    pub fn downcast<O: Object>(self) -> std::result::Result<O, Self> {
        match self {
            AnyObject::Typed { tag, value } => match value.downcast::<O>() {
                Ok(v) => Ok(*v),
                Err(value) => Err(AnyObject::Typed { tag, value }),
            },
            other => Err(other),
        }
    }

    /// The type tag, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            AnyObject::Typed { tag, .. } => Some(tag),
            AnyObject::Generic(g) => g.tag.as_deref(),
        }
    }
}

impl std::fmt::Debug for AnyObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyObject::Typed { tag, .. } => write!(f, "AnyObject::Typed({tag})"),
            AnyObject::Generic(g) => write!(f, "AnyObject::Generic({:?})", g.tag),
        }
    }
}

impl Folder {
    pub(crate) fn new(file: Arc<FileInner>, group: Group, path: String) -> Self {
        Folder { file, group, path }
    }

    /// The underlying HDF5 group, for what h5pom does not cover.
    pub fn hdf5_group(&self) -> &Group {
        &self.group
    }

    /// This folder's path in the file (`/` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    fn writable(&self, op: &'static str, name: &str) -> Result<()> {
        if self.file.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                op,
                path: join(&self.path, name),
            })
        }
    }

    fn at(&self) -> At<'_> {
        At::new(&self.group, &self.path)
    }

    /// Stores `obj` under `name`, replacing whatever was there, and returns a handle to it.
    pub fn insert<O: Object>(&self, name: &str, obj: &O) -> Result<Handle<O>> {
        validate_object_name(name)?;
        self.writable("insert", name)?;
        let path = join(&self.path, name);
        if self.contains(name)? {
            self.group
                .unlink(name)
                .ctx("replace object", || path.clone())?;
        }
        let g = self
            .group
            .create_group(name)
            .ctx("create group", || path.clone())?;
        At::new(&g, &path).write_value(TAG_ATTR, &Value::Str(O::TYPE_TAG.into()))?;
        let mut session = SaveSession::default();
        obj.save_fields(&mut SaveCtx::new(
            &self.file,
            g.clone(),
            path.clone(),
            &mut session,
        ))?;
        Ok(Handle::new(self.file.clone(), g, path))
    }

    /// Stores a shared object under `name`: as a hard link if it is already in the file.
    pub fn insert_shared<O: Object>(&self, name: &str, obj: &Shared<O>) -> Result<Handle<O>> {
        validate_object_name(name)?;
        self.writable("insert", name)?;
        let mut session = SaveSession::default();
        let mut cx = SaveCtx::new(
            &self.file,
            self.group.clone(),
            self.path.clone(),
            &mut session,
        );
        cx.save_shared(name, obj)?;
        self.get(name)
    }

    /// A handle to the object `name`, checking its type tag is `O`'s.
    pub fn get<O: Object>(&self, name: &str) -> Result<Handle<O>> {
        let (g, path) = self.open_group(name)?;
        check_tag::<O>(&g, &path)?;
        Ok(Handle::new(self.file.clone(), g, path))
    }

    /// Loads the object `name` completely (arrays in [`LazyArray`](crate::LazyArray) fields
    /// stay unread until used).
    pub fn load<O: Object>(&self, name: &str) -> Result<O> {
        self.get::<O>(name)?.load()
    }

    /// Loads the object `name` as a [`Shared`] through the file's identity map: loading the
    /// same group again while the first `Shared` is alive returns that same object.
    pub fn load_shared<O: Object>(&self, name: &str) -> Result<Shared<O>> {
        let (g, path) = self.open_group(name)?;
        let mut session = LoadSession::default();
        let r = load_shared_group::<O>(&self.file, g, path, &mut session, None);
        if r.is_err() {
            session.rollback(&self.file);
        }
        r
    }

    /// Loads the object `name` by its tag: the registered type if the schema has it, a
    /// [`GenericObject`] otherwise.
    pub fn load_any(&self, name: &str) -> Result<AnyObject> {
        let (g, path) = self.open_group(name)?;
        let tag = read_tag(&g, &path)?;
        if let Some(load) = tag.as_deref().and_then(|t| self.file.schema.loader(t)) {
            return Ok(AnyObject::Typed {
                tag: tag.unwrap_or_default(),
                value: load_in(&self.file, g, path, load)?,
            });
        }
        GenericObject::load(&g, &path).map(|g| AnyObject::Generic(Box::new(g)))
    }

    /// The contents of `name` as a generic object, whatever its tag.
    pub fn load_generic(&self, name: &str) -> Result<GenericObject> {
        let (g, path) = self.open_group(name)?;
        GenericObject::load(&g, &path)
    }

    /// This folder's own contents as a generic object: by [`GenericObject::load`] if the group
    /// has a type tag (it is an object), by [`GenericObject::load_folder`] otherwise (the root,
    /// or a plain folder). A `loader-key` that is not a string counts as a tag.
    pub fn load_generic_self(&self) -> Result<GenericObject> {
        match read_tag(&self.group, &self.path) {
            Ok(None) => GenericObject::load_folder(&self.group, &self.path),
            _ => GenericObject::load(&self.group, &self.path),
        }
    }

    pub(crate) fn open_group(&self, name: &str) -> Result<(Group, String)> {
        validate_object_name(name)?;
        let path = join(&self.path, name);
        if !self.contains(name)? {
            return Err(Error::NotFound { path });
        }
        let g = self
            .group
            .group(name)
            .map_err(|_| Error::NotFound { path: path.clone() })?;
        Ok((g, path))
    }

    /// Copies the object `name` of `src` (from any file) into this folder as `dst_name`, with
    /// everything below it (HDF5's object copy, h5pom's `Duplicator`): attributes, datasets and
    /// sub-groups byte for byte, and a group reached twice inside the copied tree (a shared
    /// reference) stays one group with two hard links. Replaces an existing `dst_name`.
    ///
    /// For a typed copy that goes through Rust values instead, load from one folder and insert
    /// into the other: sharing is kept there too, by the files' identity maps.
    pub fn copy_from(&self, src: &Folder, name: &str, dst_name: &str) -> Result<()> {
        validate_object_name(dst_name)?;
        self.writable("copy", dst_name)?;
        let (g, path) = src.open_group(name)?;
        let dst = join(&self.path, dst_name);
        if self.contains(dst_name)? {
            self.group
                .unlink(dst_name)
                .ctx("replace object", || dst.clone())?;
        }
        g.copy_to(&self.group, dst_name)
            .ctx("copy object", || format!("{path} -> {dst}"))
    }

    /// Removes the link `name` (the object's data is freed once no other link points to it).
    pub fn remove(&self, name: &str) -> Result<()> {
        validate_object_name(name)?;
        self.writable("remove", name)?;
        let path = join(&self.path, name);
        if !self.contains(name)? {
            return Err(Error::NotFound { path });
        }
        self.group.unlink(name).ctx("remove", || path)
    }

    /// True if the folder has an entry `name`.
    pub fn contains(&self, name: &str) -> Result<bool> {
        if validate_object_name(name).is_err() {
            return Ok(false);
        }
        ffi::link_exists(&self.group, name).ctx("check link", || join(&self.path, name))
    }

    /// The entries, sorted by name, with their kinds and type tags.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let names = self.names()?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let path = join(&self.path, &name);
            let kind = match self.group.loc_type_by_name(&name) {
                Ok(hdf5::LocationType::Group) => match self.group.group(&name) {
                    Ok(g) => EntryKind::Group {
                        tag: read_tag(&g, &path).ok().flatten(),
                    },
                    Err(_) => EntryKind::Other,
                },
                Ok(hdf5::LocationType::Dataset) => EntryKind::Dataset,
                _ => EntryKind::Other,
            };
            out.push(Entry { name, kind });
        }
        Ok(out)
    }

    /// The names of the entries, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names = self
            .group
            .member_names()
            .ctx("list members", || self.path.clone())?;
        names.sort_unstable();
        Ok(names)
    }

    /// A sub-folder (any group, tagged or not).
    pub fn folder(&self, name: &str) -> Result<Folder> {
        let (g, path) = self.open_group(name)?;
        Ok(Folder::new(self.file.clone(), g, path))
    }

    /// Creates an untagged sub-folder (or opens it if it exists).
    pub fn create_folder(&self, name: &str) -> Result<Folder> {
        validate_object_name(name)?;
        if self.contains(name)? {
            return self.folder(name);
        }
        self.writable("create folder", name)?;
        let path = join(&self.path, name);
        let g = self
            .group
            .create_group(name)
            .ctx("create group", || path.clone())?;
        Ok(Folder::new(self.file.clone(), g, path))
    }

    /// Reads the scalar attribute `name` (`Ok(None)` if absent).
    pub fn attr<S: Scalar>(&self, name: &str) -> Result<Option<S>> {
        match self.at().read_value(name)? {
            None => Ok(None),
            Some(v) => S::from_value(v)
                .map(Some)
                .map_err(|e| crate::attr::scalar_error(&self.path, name, e)),
        }
    }

    /// Writes the scalar attribute `name`.
    pub fn set_attr<S: Scalar>(&self, name: &str, value: &S) -> Result<()> {
        check_attr_name(name)?;
        self.writable("write attribute", name)?;
        self.at().write_value(name, &value.to_value())
    }

    /// Deletes the attribute `name` (and its `-type` marker); no error if absent.
    pub fn delete_attr(&self, name: &str) -> Result<()> {
        check_attr_name(name)?;
        self.writable("delete attribute", name)?;
        self.at().delete(name)?;
        self.at()
            .delete(&format!("{name}{}", crate::attr::TYPE_SUFFIX))
    }

    /// The names of the folder's own attributes (format attributes `h5pom-*` excluded).
    pub fn attr_names(&self) -> Result<Vec<String>> {
        let names = self
            .group
            .attr_names()
            .ctx("list attributes", || self.path.clone())?;
        Ok(names
            .into_iter()
            .filter(|n| !n.starts_with(RESERVED_PREFIX))
            .collect())
    }
}

fn check_attr_name(name: &str) -> Result<()> {
    validate_object_name(name)?;
    if name.ends_with(crate::attr::TYPE_SUFFIX) || name == TAG_ATTR {
        return Err(Error::InvalidName {
            name: name.to_owned(),
            reason: "names ending in '-type' and 'loader-key' are reserved",
        });
    }
    Ok(())
}

impl std::fmt::Debug for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Folder({})", self.path)
    }
}
