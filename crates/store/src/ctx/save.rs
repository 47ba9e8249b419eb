//! [`SaveCtx`]: where an object's fields are being written.

use hdf5::Group;
use ndarray::{ArrayView, Dimension};

use crate::array::DeferredArrays;
use crate::attr::At;
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object::{self as ffi, Token};
use crate::field::Field;
use crate::file::FileInner;
use crate::name::join;
use crate::object::{Object, Shared, TAG_ATTR};
use crate::pipeline::{ArrayOptions, Element};
use crate::value::Value;

use super::identity::lock;
use super::row::{RefMap, Row};
use super::session::SaveSession;
use super::{GroupTarget, Target, full_name, not_columnar};

/// Where an object's fields are being written: a group, or a row of a column table.
pub struct SaveCtx<'a, 'd> {
    pub(crate) target: Target<'a, SaveSession, &'a mut Row>,
    pub(crate) path: String,
    prefix: Option<&'a str>,
    refs: Option<&'a dyn RefMap>,
    /// Row mode: this is the first row, record the field names.
    record_names: bool,
    /// Arrays are collected here (to be written in one parallel pass) instead of written.
    deferred: Option<&'a mut DeferredArrays<'d>>,
    /// Array options of the field being written (`#[h5pom(compression = "…")]`).
    field_opts: Option<ArrayOptions>,
    /// Row mode: array fields are captured here instead of refused.
    captured: Option<&'a mut Vec<CapturedArray<'d>>>,
    /// The group is new: attributes are created without checks (see [`Embed::fresh`]).
    ///
    /// [`Embed::fresh`]: crate::Embed::fresh
    fresh: bool,
}

/// An array field captured by a row-mode save ([`capture_row`](crate::capture_row)): its
/// name, element type, shape and C-order bytes (borrowed when the array is contiguous).
#[derive(Debug, Clone)]
pub struct CapturedArray<'d> {
    /// The field name (with the context's prefix).
    pub name: String,
    /// Element type.
    pub dtype: crate::pipeline::Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// C-order, native-endian bytes.
    pub bytes: std::borrow::Cow<'d, [u8]>,
}

impl<'a, 'd> SaveCtx<'a, 'd> {
    pub(crate) fn new(
        file: &'a FileInner,
        group: Group,
        path: String,
        session: &'a mut SaveSession,
    ) -> Self {
        SaveCtx {
            target: Target::Group(GroupTarget {
                file,
                group,
                session,
            }),
            path,
            prefix: None,
            refs: None,
            record_names: false,
            deferred: None,
            field_opts: None,
            captured: None,
            fresh: false,
        }
    }

    /// A context that writes scalar fields into `row` (columnar storage). Any other kind of
    /// field fails with [`Error::NotColumnar`].
    pub fn row(row: &'a mut Row, path: String) -> Self {
        let record_names = row.names.is_empty();
        SaveCtx {
            record_names,
            target: Target::Row(row),
            path,
            prefix: None,
            refs: None,
            deferred: None,
            field_opts: None,
            captured: None,
            fresh: false,
        }
    }

    /// Row mode: capture array fields into `arrays` instead of refusing them.
    pub fn with_captured(mut self, arrays: &'a mut Vec<CapturedArray<'d>>) -> Self {
        self.captured = Some(arrays);
        self
    }

    /// Prefix every field name with `prefix` (e.g. `"Health."`), so that several objects can
    /// share one group without colliding.
    pub fn with_prefix(mut self, prefix: &'a str) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// The group was just created and holds none of the attributes this context writes:
    /// they are created without looking for stored ones (see [`Embed::fresh`]).
    ///
    /// [`Embed::fresh`]: crate::Embed::fresh
    pub fn with_fresh(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    /// Install the map used by [`save_ref`](Self::save_ref).
    pub fn with_refs(mut self, refs: &'a dyn RefMap) -> Self {
        self.refs = Some(refs);
        self
    }

    /// Collect array fields into `sink` instead of writing them (see
    /// [`File::write_deferred`](crate::File::write_deferred)).
    pub fn with_deferred(mut self, sink: &'a mut DeferredArrays<'d>) -> Self {
        self.deferred = Some(sink);
        self
    }

    /// The array options of field `name` given `#[h5pom(compression = spec, chunk = …)]`:
    /// the parsed filters (or the file's defaults) and the chunk shape.
    fn field_options(
        &self,
        name: &str,
        spec: Option<&str>,
        chunk: Option<&[usize]>,
    ) -> Result<ArrayOptions> {
        let mut opts = match spec {
            Some(spec) => ArrayOptions::with_filters(spec.parse().map_err(|reason| {
                Error::InvalidOptions {
                    path: join(&self.path, name),
                    reason,
                }
            })?),
            None => self.default_array_options(),
        };
        opts.chunk = chunk.map(<[usize]>::to_vec);
        Ok(opts)
    }

    /// Writes one field whose arrays use the options `spec` (`"lz4"`, `"zstd:3"`,
    /// `"deflate:6"`, `"none"`) and, if given, the chunk shape `chunk`.
    pub fn field_with<F: Field>(
        &mut self,
        name: &str,
        value: &'d F,
        spec: Option<&str>,
        chunk: Option<&[usize]>,
    ) -> Result<()> {
        self.field_opts = Some(self.field_options(name, spec, chunk)?);
        let r = self.field(name, value);
        self.field_opts = None;
        r
    }

    fn default_array_options(&self) -> ArrayOptions {
        match &self.target {
            Target::Group(g) => g.file.array_options(),
            Target::Row(_) => ArrayOptions::default(),
        }
    }

    /// Writes an array field: now, or into the deferral sink.
    pub(crate) fn save_array<T: Element, D: Dimension>(
        &mut self,
        name: &str,
        a: ArrayView<'d, T, D>,
    ) -> Result<()> {
        let Target::Group(t) = &self.target else {
            let Some(captured) = &mut self.captured else {
                return Err(not_columnar(&self.path, name));
            };
            let bytes = match a.to_slice() {
                Some(s) => std::borrow::Cow::Borrowed(crate::pipeline::as_bytes(s)),
                None => {
                    let v: Vec<T> = a.iter().copied().collect();
                    std::borrow::Cow::Owned(crate::pipeline::as_bytes(&v).to_vec())
                }
            };
            captured.push(CapturedArray {
                name: name.to_owned(),
                dtype: T::DTYPE,
                shape: a.shape().to_vec(),
                bytes,
            });
            return Ok(());
        };
        let opts = match &self.field_opts {
            Some(o) => o.clone(),
            None => t.file.array_options(),
        };
        match &mut self.deferred {
            Some(sink) => {
                sink.push(&t.group, &self.path, name, a, opts);
                Ok(())
            }
            None => crate::array::write(t.file, &t.group, &self.path, name, a, Some(&opts)),
        }
    }

    /// Writes one field.
    pub fn field<F: Field>(&mut self, name: &str, value: &'d F) -> Result<()> {
        match self.prefix {
            Some(_) => {
                let full = full_name(self.prefix, name).into_owned();
                value.save(self, &full)
            }
            None => value.save(self, name),
        }
    }

    /// Writes a reference to an external handle (an ECS entity) as its persistent id
    /// (`u64` attribute; `None` for `Option` fields that are empty).
    pub fn save_ref(&mut self, name: &str, bits: Option<u64>) -> Result<()> {
        let id = self.ref_id(name, bits, false)?;
        let full = full_name(self.prefix, name).into_owned();
        self.put_value(&full, crate::Scalar::to_value(&id))
    }

    /// Writes an optional reference (an `Option<Entity>` field): as [`save_ref`], except that
    /// a target the [`RefMap`] cannot map is stored as `None` if the map says so
    /// ([`RefMap::unmapped_as_none`]).
    ///
    /// [`save_ref`]: Self::save_ref
    pub fn save_opt_ref(&mut self, name: &str, bits: Option<u64>) -> Result<()> {
        let id = self.ref_id(name, bits, true)?;
        let full = full_name(self.prefix, name).into_owned();
        self.put_value(&full, crate::Scalar::to_value(&id))
    }

    fn ref_id(&self, name: &str, bits: Option<u64>, optional: bool) -> Result<Option<u64>> {
        let Some(b) = bits else {
            return Ok(None);
        };
        let refs = self.refs.ok_or_else(|| Error::NoRefMap {
            path: self.path.clone(),
            field: name.to_owned(),
        })?;
        match refs.persistent_id(b) {
            Some(id) => Ok(Some(id)),
            None if optional && refs.unmapped_as_none() => Ok(None),
            None => Err(Error::UnpersistedRef {
                path: self.path.clone(),
                field: name.to_owned(),
                target: b,
            }),
        }
    }

    /// Stores a scalar value under `name` exactly (no prefix is added): an attribute, or the
    /// next value of the row. For [`Field`] implementations, whose `name` is already full.
    pub fn put_value_raw(&mut self, name: &str, v: Value) -> Result<()> {
        self.put_value(name, v)
    }

    /// Deletes the scalar attribute `name` (and its `-type` marker) if it exists; nothing in
    /// row mode. For [`Field`] implementations that drop fields (an enum changing variant).
    pub fn remove_value(&mut self, name: &str) -> Result<()> {
        match &self.target {
            Target::Group(g) => {
                let at = At::new(&g.group, &self.path).fresh(self.fresh);
                at.delete(name)?;
                at.delete(&format!("{name}{}", crate::attr::TYPE_SUFFIX))
            }
            Target::Row(_) => Ok(()),
        }
    }

    /// The persistent id of each handle in `bits` (see [`save_ref`](Self::save_ref)).
    fn persistent_ids(&self, name: &str, bits: impl Iterator<Item = u64>) -> Result<Vec<Value>> {
        let refs = self.refs.ok_or_else(|| Error::NoRefMap {
            path: self.path.clone(),
            field: name.to_owned(),
        })?;
        bits.map(|b| {
            refs.persistent_id(b)
                .map(Value::U64)
                .ok_or_else(|| Error::UnpersistedRef {
                    path: self.path.clone(),
                    field: name.to_owned(),
                    target: b,
                })
        })
        .collect()
    }

    /// Writes a fixed-size array of external handles (`[Entity; N]`) as one 1-D `uint64`
    /// attribute of persistent ids (a `[row, N]` column in a table).
    pub fn save_ref_array(&mut self, name: &str, bits: impl Iterator<Item = u64>) -> Result<()> {
        let ids = self.persistent_ids(name, bits)?;
        let full = full_name(self.prefix, name).into_owned();
        self.put_value(&full, Value::List(ids))
    }

    /// Writes a list of external handles (`Vec<Entity>`) as the list family of `uint64`
    /// persistent ids (`name-count`, `name-0`, …), as a `Vec<u64>` field. Groups only.
    pub fn save_ref_list(&mut self, name: &str, bits: impl Iterator<Item = u64>) -> Result<()> {
        let ids = self.persistent_ids(name, bits)?;
        let full = full_name(self.prefix, name).into_owned();
        crate::field::save_list(self, &full, ids.into_iter())
    }

    /// Writes a dict of external handles (`BTreeMap<String, Entity>`, `HashMap<…>`) as the
    /// dict family of `uint64` persistent ids (`name-<key>`). Groups only.
    pub fn save_ref_map<'k>(
        &mut self,
        name: &str,
        entries: impl Iterator<Item = (&'k String, u64)>,
    ) -> Result<()> {
        let (keys, bits): (Vec<&String>, Vec<u64>) = entries.unzip();
        let ids = self.persistent_ids(name, bits.into_iter())?;
        let map = keys.into_iter().cloned().zip(ids).collect();
        let full = full_name(self.prefix, name).into_owned();
        crate::field::save_dict(self, &full, &map)
    }

    /// Writes a `Vec` of numbers as one 1-D dataset `name` (`#[h5pom(dataset)]`), with the
    /// array options `spec` and `chunk` if given (as [`field_with`](Self::field_with)).
    pub fn save_vec_dataset<T: Element>(
        &mut self,
        name: &str,
        v: &'d [T],
        spec: Option<&str>,
        chunk: Option<&[usize]>,
    ) -> Result<()> {
        let full = full_name(self.prefix, name).into_owned();
        if spec.is_some() || chunk.is_some() {
            self.field_opts = Some(self.field_options(name, spec, chunk)?);
        }
        let r = self.save_array(&full, ndarray::ArrayView1::from(v));
        self.field_opts = None;
        r
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
        Ok(At::new(self.grp(field)?, &self.path).fresh(self.fresh))
    }

    /// Stores one scalar value under `name` (an attribute, or the next value of the row).
    pub(crate) fn put_value(&mut self, name: &str, v: Value) -> Result<()> {
        match &mut self.target {
            Target::Group(g) => At::new(&g.group, &self.path)
                .fresh(self.fresh)
                .write_value(name, &v),
            Target::Row(row) => {
                if self.record_names {
                    row.names.push(name.to_owned());
                }
                row.values.push(v);
                Ok(())
            }
        }
    }

    pub(crate) fn link_exists(&self, name: &str) -> Result<bool> {
        ffi::link_exists(self.grp(name)?, name).ctx("check link", || join(&self.path, name))
    }

    pub(crate) fn unlink(&self, name: &str) -> Result<()> {
        self.grp(name)?
            .unlink(name)
            .ctx("unlink", || join(&self.path, name))
    }

    /// Writes `obj` as the sub-group `link`: a hard link if the object is already in the file.
    pub(crate) fn save_shared<O: Object>(&mut self, link: &str, obj: &Shared<O>) -> Result<()> {
        let refs = self.refs;
        let Target::Group(t) = &mut self.target else {
            return Err(not_columnar(&self.path, link));
        };
        let addr = obj.addr();
        if let Some((path, token)) = t.session.visited.get(&addr).cloned() {
            return ensure_link(&t.group, &self.path, link, &path, token);
        }
        let known = lock(t.file).by_addr(addr);
        if let Some((token, path)) = known
            && let Ok(g) = t.file.h5.group(&path)
            && ffi::token(&g).ok() == Some(token)
        {
            t.session.visited.insert(addr, (path.clone(), token));
            ensure_link(&t.group, &self.path, link, &path, token)?;
            let guard = obj.read();
            let mut child = SaveCtx::new(t.file, g, path, t.session);
            child.refs = refs;
            return guard.save_fields(&mut child);
        }
        if ffi::link_exists(&t.group, link).ctx("check link", || join(&self.path, link))? {
            t.group
                .unlink(link)
                .ctx("unlink", || join(&self.path, link))?;
        }
        let path = join(&self.path, link);
        let g = t
            .group
            .create_group(link)
            .ctx("create group", || path.clone())?;
        let token = ffi::token(&g).ctx("read object token", || path.clone())?;
        At::new(&g, &path).write_value(TAG_ATTR, &Value::Str(O::TYPE_TAG.into()))?;
        t.session.visited.insert(addr, (path.clone(), token));
        lock(t.file).register(obj.erased(), addr, token, path.clone());
        let guard = obj.read();
        let mut child = SaveCtx::new(t.file, g, path, t.session);
        child.refs = refs;
        guard.save_fields(&mut child)
    }
}

fn ensure_link(group: &Group, path: &str, link: &str, target: &str, token: Token) -> Result<()> {
    if ffi::link_exists(group, link).ctx("check link", || join(path, link))? {
        let same = group.group(link).ok().and_then(|g| ffi::token(&g).ok()) == Some(token);
        if same {
            return Ok(());
        }
        group.unlink(link).ctx("unlink", || join(path, link))?;
    }
    group
        .link_hard(target, link)
        .ctx("create hard link", || join(path, link))
}
