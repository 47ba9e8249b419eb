//! Save and load contexts: the group being written or read, plus the identity map that keeps
//! shared objects shared and stops cycles.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, Weak};

use hdf5::Group;

use crate::array::DeferredArrays;
use crate::attr::At;
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object::{self as ffi, Token};
use crate::field::Field;
use crate::file::FileInner;
use crate::name::join;
use crate::object::{Object, Shared, TAG_ATTR, check_tag, read_tag};
use crate::pipeline::{ArrayOptions, Element};
use crate::stack::{MAX_DEPTH, StackBase};
use crate::value::Value;
use ndarray::{ArrayView, Dimension};

/// The file-wide identity map: which in-memory [`Shared`] object is which HDF5 group.
///
/// Holds only weak references: it never keeps an object alive.
#[derive(Default)]
pub(crate) struct Identity {
    by_ptr: HashMap<usize, Entry>,
    by_token: HashMap<Token, usize>,
}

struct Entry {
    weak: Weak<dyn Any + Send + Sync>,
    token: Token,
    path: String,
}

impl Identity {
    fn register(
        &mut self,
        obj: Arc<dyn Any + Send + Sync>,
        addr: usize,
        token: Token,
        path: String,
    ) {
        if let Some(old) = self.by_token.insert(token, addr)
            && old != addr
        {
            self.by_ptr.remove(&old);
        }
        let weak = Arc::downgrade(&obj);
        self.by_ptr.insert(addr, Entry { weak, token, path });
    }

    fn by_addr(&mut self, addr: usize) -> Option<(Token, String)> {
        let e = self.by_ptr.get(&addr)?;
        // A live Weak keeps the allocation, so a successful upgrade proves the address still
        // names the same object.
        if e.weak.strong_count() == 0 {
            let token = e.token;
            self.by_ptr.remove(&addr);
            self.by_token.remove(&token);
            return None;
        }
        Some((e.token, e.path.clone()))
    }

    fn by_token(&mut self, token: Token) -> Option<Arc<dyn Any + Send + Sync>> {
        let addr = *self.by_token.get(&token)?;
        let live = self.by_ptr.get(&addr).and_then(|e| e.weak.upgrade());
        if live.is_none() {
            self.by_token.remove(&token);
            self.by_ptr.remove(&addr);
        }
        live
    }

    fn forget(&mut self, token: Token) {
        if let Some(addr) = self.by_token.remove(&token) {
            self.by_ptr.remove(&addr);
        }
    }

    /// Keeps recorded paths right after a link under `old` was renamed to `new`.
    pub(crate) fn renamed(&mut self, old: &str, new: &str) {
        for e in self.by_ptr.values_mut() {
            if e.path == old {
                e.path = new.to_owned();
            } else if let Some(rest) = e.path.strip_prefix(old).filter(|r| r.starts_with('/')) {
                e.path = format!("{new}{rest}");
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_ptr.clear();
        self.by_token.clear();
    }
}

pub(crate) fn lock(file: &FileInner) -> std::sync::MutexGuard<'_, Identity> {
    file.identity.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State of one save call: the shared objects already written in it.
#[derive(Default)]
pub(crate) struct SaveSession {
    visited: HashMap<usize, (String, Token)>,
}

/// State of one load call: the objects it registered, forgotten again if the load fails.
#[derive(Default)]
pub(crate) struct LoadSession {
    registered: Vec<Token>,
    /// How many shared objects are being loaded, one inside the other.
    depth: usize,
    /// Where the outermost of them began.
    stack: Option<StackBase>,
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

impl LoadSession {
    pub(crate) fn rollback(&mut self, file: &FileInner) {
        let mut id = lock(file);
        for t in self.registered.drain(..) {
            id.forget(t);
        }
    }
}

/// Maps handles of another system (for example ECS entities, as `u64` bits) to the
/// persistent ids stored in the file, and back. Installed by the layer that owns those handles
/// (the ECS bridge); plain object graphs do not need it.
pub trait RefMap {
    /// The persistent id to store for the handle `bits`, or `None` if it cannot be stored
    /// (the target is not persisted).
    fn persistent_id(&self, bits: u64) -> Option<u64>;
    /// The handle for a stored persistent id (creating or reserving it if needed).
    fn resolve(&self, id: u64) -> Option<u64>;
}

/// A flat row of values: the sink of an object whose fields are all scalars, for columnar
/// (table) storage. Field `i` of the object lands in `values[i]`.
#[derive(Debug, Default)]
pub struct Row {
    /// Field names, in the order the object writes them (filled by the first save into an
    /// empty `names` only).
    pub names: Vec<String>,
    /// Values of the current row.
    pub values: Vec<Value>,
}

pub(crate) struct GroupTarget<'a, S> {
    pub(crate) file: &'a FileInner,
    pub(crate) group: Group,
    pub(crate) session: &'a mut S,
}

pub(crate) enum Target<'a, S, R> {
    Group(GroupTarget<'a, S>),
    Row(R),
}

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
}

/// Where an object's fields are being read from: a group, or a row of a column table.
pub struct LoadCtx<'a> {
    pub(crate) target: Target<'a, LoadSession, RowRef<'a>>,
    pub(crate) path: String,
    prefix: Option<&'a str>,
    refs: Option<&'a dyn RefMap>,
}

fn not_columnar(path: &str, field: &str) -> Error {
    Error::NotColumnar {
        path: path.to_owned(),
        field: field.to_owned(),
    }
}

fn full_name<'n>(prefix: Option<&str>, name: &'n str) -> std::borrow::Cow<'n, str> {
    match prefix {
        Some(p) => std::borrow::Cow::Owned(format!("{p}{name}")),
        None => std::borrow::Cow::Borrowed(name),
    }
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
        }
    }

    /// Prefix every field name with `prefix` (e.g. `"Health."`), so that several objects can
    /// share one group without colliding.
    pub fn with_prefix(mut self, prefix: &'a str) -> Self {
        self.prefix = Some(prefix);
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

    /// Writes one field whose arrays use the options `spec` (`"lz4"`, `"zstd:3"`,
    /// `"deflate:6"`, `"none"`) and, if given, the chunk shape `chunk`.
    pub fn field_with<F: Field>(
        &mut self,
        name: &str,
        value: &'d F,
        spec: Option<&str>,
        chunk: Option<&[usize]>,
    ) -> Result<()> {
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
        self.field_opts = Some(opts);
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
            return Err(not_columnar(&self.path, name));
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
        let id = match bits {
            None => None,
            Some(b) => {
                let refs = self.refs.ok_or_else(|| Error::NoRefMap {
                    path: self.path.clone(),
                    field: name.to_owned(),
                })?;
                Some(refs.persistent_id(b).ok_or_else(|| Error::DanglingRef {
                    path: self.path.clone(),
                    field: name.to_owned(),
                })?)
            }
        };
        let full = full_name(self.prefix, name).into_owned();
        self.put_value(&full, crate::Scalar::to_value(&id))
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
        Ok(At {
            loc: self.grp(field)?,
            path: &self.path,
        })
    }

    /// Stores one scalar value under `name` (an attribute, or the next value of the row).
    pub(crate) fn put_value(&mut self, name: &str, v: Value) -> Result<()> {
        match &mut self.target {
            Target::Group(g) => At {
                loc: &g.group,
                path: &self.path,
            }
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
        At {
            loc: &g,
            path: &path,
        }
        .write_value(TAG_ATTR, &Value::Str(O::TYPE_TAG.into()))?;
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

/// A row being read: the names of the columns and this row's values (taken as read).
pub struct RowRef<'a> {
    /// Column names.
    pub names: &'a [String],
    /// This row's values, in column order.
    pub values: &'a mut [Option<Value>],
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
        }
    }

    /// A context that reads scalar fields from one row of a column table.
    pub fn row(row: RowRef<'a>, path: String) -> Self {
        LoadCtx {
            target: Target::Row(row),
            path,
            prefix: None,
            refs: None,
        }
    }

    /// Takes the scalar value stored under `name` (`Ok(None)` if absent).
    pub(crate) fn get_value(&mut self, name: &str) -> Result<Option<Value>> {
        match &mut self.target {
            Target::Group(g) => At {
                loc: &g.group,
                path: &self.path,
            }
            .read_value(name),
            Target::Row(row) => Ok(row
                .names
                .iter()
                .position(|n| n == name)
                .and_then(|i| row.values.get_mut(i))
                .and_then(Option::take)),
        }
    }

    pub(crate) fn set_embed(&mut self, prefix: Option<&'a str>, refs: Option<&'a dyn RefMap>) {
        self.prefix = prefix;
        self.refs = refs;
    }

    /// Prefix every field name with `prefix` (see [`SaveCtx::with_prefix`]).
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

    /// Reads a reference to an external handle written by [`SaveCtx::save_ref`]: the handle's
    /// bits, `None` if the field holds `None`.
    pub fn load_ref(&mut self, name: &str) -> Result<Option<u64>> {
        let id: Option<u64> = self.field(name)?;
        let Some(id) = id else { return Ok(None) };
        let refs = self.refs.ok_or_else(|| Error::NoRefMap {
            path: self.path.clone(),
            field: name.to_owned(),
        })?;
        refs.resolve(id)
            .map(Some)
            .ok_or_else(|| Error::DanglingRef {
                path: self.path.clone(),
                field: name.to_owned(),
            })
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
        Ok(At {
            loc: self.grp(field)?,
            path: &self.path,
        })
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
