//! [`LoadCtx`]: where an object's fields are being read from; loading shared objects.

use hdf5::Group;

use crate::attr::At;
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object as ffi;
use crate::field::Field;
use crate::file::FileInner;
use crate::name::join;
use crate::object::{Object, Shared, check_tag, read_tag};
use crate::stack::{MAX_DEPTH, StackBase};
use crate::value::Value;

use super::identity::lock;
use super::row::{RefMap, RowRef};
use super::session::LoadSession;
use super::{GroupTarget, Target, full_name, not_columnar};

/// Where an object's fields are being read from: a group, or a row of a column table.
pub struct LoadCtx<'a> {
    pub(crate) target: Target<'a, LoadSession, RowRef<'a>>,
    pub(crate) path: String,
    prefix: Option<&'a str>,
    refs: Option<&'a dyn RefMap>,
    /// Row mode: array fields are read from frame `.2` of the series in group `.0` (at `.1`).
    frames: Option<(&'a Group, &'a str, usize)>,
}

/// Runs one load in a fresh session on `group`; if it fails, the objects it registered in the
/// identity map are forgotten again (so no half-loaded object can be returned later).
pub(crate) fn load_in<T>(
    file: &FileInner,
    group: Group,
    path: String,
    f: impl FnOnce(&mut LoadCtx<'_>) -> Result<T>,
) -> Result<T> {
    let mut session = LoadSession::default();
    let r = f(&mut LoadCtx::new(file, group, path, &mut session));
    if r.is_err() {
        session.rollback(file);
    }
    r
}

impl<'a> LoadCtx<'a> {
    pub(crate) fn new(
        file: &'a FileInner,
        group: Group,
        path: String,
        session: &'a mut LoadSession,
    ) -> Self {
        LoadCtx {
            target: Target::Group(GroupTarget {
                file,
                group,
                session,
            }),
            path,
            prefix: None,
            refs: None,
            frames: None,
        }
    }

    /// A context that reads scalar fields from one row of a column table.
    pub fn row(row: RowRef<'a>, path: String) -> Self {
        LoadCtx {
            target: Target::Row(row),
            path,
            prefix: None,
            refs: None,
            frames: None,
        }
    }

    /// Row mode: read array fields as frame `sample` of the series of the same name in
    /// `group` (at `path`), as written by [`series::append_frame`](crate::series::append_frame).
    pub fn with_frames(mut self, group: &'a Group, path: &'a str, sample: usize) -> Self {
        self.frames = Some((group, path, sample));
        self
    }

    /// The frame source of a row-mode load, if any.
    pub(crate) fn frames(&self) -> Option<(&'a Group, &'a str, usize)> {
        match self.target {
            Target::Row(_) => self.frames,
            Target::Group(_) => None,
        }
    }

    /// Takes the scalar value stored under `name` (`Ok(None)` if absent).
    pub(crate) fn get_value(&mut self, name: &str) -> Result<Option<Value>> {
        match &mut self.target {
            Target::Group(g) => At::new(&g.group, &self.path).read_value(name),
            Target::Row(row) => Ok(row
                .names
                .iter()
                .position(|n| n == name)
                .and_then(|i| row.values.get_mut(i))
                .and_then(Option::take)),
        }
    }

    /// Takes the scalar value stored under `name` exactly (no prefix is added; `Ok(None)` if
    /// absent). For [`Field`] implementations, whose `name` is already full.
    pub fn value_raw(&mut self, name: &str) -> Result<Option<Value>> {
        self.get_value(name)
    }

    pub(crate) fn set_embed(&mut self, prefix: Option<&'a str>, refs: Option<&'a dyn RefMap>) {
        self.prefix = prefix;
        self.refs = refs;
    }

    /// Prefix every field name with `prefix` (see [`SaveCtx::with_prefix`](crate::SaveCtx::with_prefix)).
    pub fn with_prefix(mut self, prefix: &'a str) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// Install the map used by [`load_ref`](Self::load_ref).
    pub fn with_refs(mut self, refs: &'a dyn RefMap) -> Self {
        self.refs = Some(refs);
        self
    }

    pub(crate) fn file(&self) -> Option<&FileInner> {
        match &self.target {
            Target::Group(g) => Some(g.file),
            Target::Row(_) => None,
        }
    }

    /// Reads one field; a missing field takes the type's missing value (`None`, empty) if it
    /// has one, and is an [`Error::MissingField`] otherwise.
    pub fn field<F: Field>(&mut self, name: &str) -> Result<F> {
        let full = full_name(self.prefix, name);
        match F::load(self, &full)? {
            Some(v) => Ok(v),
            None => F::if_missing().ok_or_else(|| Error::MissingField {
                path: self.path.clone(),
                field: full.into_owned(),
            }),
        }
    }

    /// Reads one field, taking `Default::default()` if the file lacks it (schema evolution).
    pub fn field_or_default<F: Field + Default>(&mut self, name: &str) -> Result<F> {
        let full = full_name(self.prefix, name);
        Ok(F::load(self, &full)?.unwrap_or_default())
    }

    /// Reads a reference to an external handle written by [`SaveCtx::save_ref`](crate::SaveCtx::save_ref): the handle's
    /// bits, `None` if the field holds `None`.
    pub fn load_ref(&mut self, name: &str) -> Result<Option<u64>> {
        let id: Option<u64> = self.field(name)?;
        let Some(id) = id else { return Ok(None) };
        let refs = self.refs.ok_or_else(|| Error::NoRefMap {
            path: self.path.clone(),
            field: name.to_owned(),
        })?;
        match refs.resolve(id) {
            Some(bits) => Ok(Some(bits)),
            // An optional reference to an entity that is not loaded (a subset load).
            None if refs.unmapped_as_none() => Ok(None),
            None => Err(Error::DanglingRef {
                path: self.path.clone(),
                field: name.to_owned(),
            }),
        }
    }

    /// The handle of each stored persistent id.
    fn resolve_all(&self, name: &str, ids: Vec<u64>) -> Result<Vec<u64>> {
        let refs = self.refs.ok_or_else(|| Error::NoRefMap {
            path: self.path.clone(),
            field: name.to_owned(),
        })?;
        ids.into_iter()
            .map(|id| {
                refs.resolve(id).ok_or_else(|| Error::DanglingRef {
                    path: self.path.clone(),
                    field: name.to_owned(),
                })
            })
            .collect()
    }

    /// Reads the handles written by [`SaveCtx::save_ref_array`](crate::SaveCtx::save_ref_array):
    /// exactly `N` of them.
    pub fn load_ref_array<const N: usize>(&mut self, name: &str) -> Result<[u64; N]> {
        let ids: [u64; N] = self.field(name)?;
        let bits = self.resolve_all(name, ids.to_vec())?;
        <[u64; N]>::try_from(bits).map_err(|b| Error::Corrupt {
            path: self.path.clone(),
            reason: format!("{name}: {} references, expected {N}", b.len()),
        })
    }

    /// Reads the handles written by [`SaveCtx::save_ref_list`](crate::SaveCtx::save_ref_list)
    /// (empty if absent).
    pub fn load_ref_list(&mut self, name: &str) -> Result<Vec<u64>> {
        let ids: Vec<u64> = self.field(name)?;
        self.resolve_all(name, ids)
    }

    /// Reads the handles written by [`SaveCtx::save_ref_map`](crate::SaveCtx::save_ref_map)
    /// (empty if absent).
    pub fn load_ref_map(&mut self, name: &str) -> Result<Vec<(String, u64)>> {
        let ids: std::collections::BTreeMap<String, u64> = self.field(name)?;
        let (keys, ids): (Vec<String>, Vec<u64>) = ids.into_iter().unzip();
        let bits = self.resolve_all(name, ids)?;
        Ok(keys.into_iter().zip(bits).collect())
    }

    /// Reads a `Vec` of numbers stored as one 1-D dataset (`#[h5pom(dataset)]`; empty if
    /// absent).
    pub fn load_vec_dataset<T: crate::pipeline::Element>(&mut self, name: &str) -> Result<Vec<T>> {
        let full = full_name(self.prefix, name);
        let a = <ndarray::Array1<T> as Field>::load(self, &full)?;
        Ok(a.map(|a| a.to_vec()).unwrap_or_default())
    }

    /// The object's path in the file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The object's HDF5 group, for custom [`Field`] implementations (`None` in row mode).
    pub fn group(&self) -> Option<&Group> {
        match &self.target {
            Target::Group(g) => Some(&g.group),
            Target::Row(_) => None,
        }
    }

    pub(crate) fn grp(&self, field: &str) -> Result<&Group> {
        self.group().ok_or_else(|| not_columnar(&self.path, field))
    }

    pub(crate) fn at(&self, field: &str) -> Result<At<'_>> {
        Ok(At::new(self.grp(field)?, &self.path))
    }

    pub(crate) fn link_exists(&self, name: &str) -> Result<bool> {
        ffi::link_exists(self.grp(name)?, name).ctx("check link", || join(&self.path, name))
    }

    /// Reads the sub-group `link` as a shared object; `Ok(None)` if there is no such link.
    pub(crate) fn load_shared<O: Object>(&mut self, link: &str) -> Result<Option<Shared<O>>> {
        if !self.link_exists(link)? {
            return Ok(None);
        }
        let refs = self.refs;
        let Target::Group(t) = &mut self.target else {
            return Err(not_columnar(&self.path, link));
        };
        let path = join(&self.path, link);
        let g = t.group.group(link).map_err(|_| Error::TypeMismatch {
            path: self.path.clone(),
            field: link.to_owned(),
            expected: format!("object {}", O::TYPE_TAG),
            found: "not a group".into(),
        })?;
        load_shared_group(t.file, g, path, t.session, refs).map(Some)
    }
}

pub(crate) fn load_shared_group<O: Object>(
    file: &FileInner,
    g: Group,
    path: String,
    session: &mut LoadSession,
    refs: Option<&dyn RefMap>,
) -> Result<Shared<O>> {
    let token = ffi::token(&g).ctx("read object token", || path.clone())?;
    let known = lock(file).by_token(token);
    if let Some(any) = known {
        return Shared::from_erased(any).ok_or_else(|| Error::WrongTag {
            path: path.clone(),
            expected: O::TYPE_TAG.to_owned(),
            found: read_tag(&g, &path).ok().flatten(),
        });
    }
    check_tag::<O>(&g, &path)?;
    // Each level recurses (and uses stack): a file nesting objects without end must not
    // overflow it.
    if session.depth >= MAX_DEPTH {
        return Err(Error::Corrupt {
            path,
            reason: format!("objects nested deeper than {MAX_DEPTH}"),
        });
    }
    session
        .stack
        .get_or_insert_with(StackBase::new)
        .check(&path, session.depth)?;
    let shared = Shared::<O>::empty();
    lock(file).register(shared.erased(), shared.addr(), token, path.clone());
    session.registered.push(token);
    session.depth += 1;
    let value = {
        let mut cx = LoadCtx::new(file, g, path, session);
        cx.refs = refs;
        O::load_fields(&mut cx)
    };
    session.depth -= 1;
    shared.fill(value?);
    Ok(shared)
}
