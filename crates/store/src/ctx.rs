//! Save and load contexts: the group being written or read, plus the identity map that keeps
//! shared objects shared and stops cycles.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, Weak};

use hdf5::Group;

use crate::attr::At;
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::object::{self as ffi, Token};
use crate::field::Field;
use crate::file::FileInner;
use crate::name::join;
use crate::object::{Object, Shared, TAG_ATTR};
use crate::value::Value;

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
}

impl LoadSession {
    pub(crate) fn rollback(&mut self, file: &FileInner) {
        let mut id = lock(file);
        for t in self.registered.drain(..) {
            id.forget(t);
        }
    }
}

/// The group an object's fields are being written into.
pub struct SaveCtx<'a> {
    pub(crate) file: &'a FileInner,
    pub(crate) group: Group,
    pub(crate) path: String,
    pub(crate) session: &'a mut SaveSession,
}

/// The group an object's fields are being read from.
pub struct LoadCtx<'a> {
    pub(crate) file: &'a FileInner,
    pub(crate) group: Group,
    pub(crate) path: String,
    pub(crate) session: &'a mut LoadSession,
}

impl<'a> SaveCtx<'a> {
    pub(crate) fn new(
        file: &'a FileInner,
        group: Group,
        path: String,
        session: &'a mut SaveSession,
    ) -> Self {
        SaveCtx {
            file,
            group,
            path,
            session,
        }
    }

    /// Writes one field.
    pub fn field<F: Field>(&mut self, name: &str, value: &F) -> Result<()> {
        value.save(self, name)
    }

    /// The object's path in the file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The object's HDF5 group, for custom [`Field`] implementations.
    pub fn group(&self) -> &Group {
        &self.group
    }

    pub(crate) fn at(&self) -> At<'_> {
        At {
            loc: &self.group,
            path: &self.path,
        }
    }

    pub(crate) fn link_exists(&self, name: &str) -> Result<bool> {
        ffi::link_exists(&self.group, name).ctx("check link", || join(&self.path, name))
    }

    pub(crate) fn unlink(&self, name: &str) -> Result<()> {
        self.group
            .unlink(name)
            .ctx("unlink", || join(&self.path, name))
    }

    /// Writes `obj` as the sub-group `link`: a hard link if the object is already in the file.
    pub(crate) fn save_shared<O: Object>(&mut self, link: &str, obj: &Shared<O>) -> Result<()> {
        let addr = obj.addr();
        if let Some((path, token)) = self.session.visited.get(&addr).cloned() {
            return self.ensure_link(link, &path, token);
        }
        let known = lock(self.file).by_addr(addr);
        if let Some((token, path)) = known
            && let Ok(g) = self.file.h5.group(&path)
            && ffi::token(&g).ok() == Some(token)
        {
            self.session.visited.insert(addr, (path.clone(), token));
            self.ensure_link(link, &path, token)?;
            let guard = obj.read();
            let mut child = SaveCtx::new(self.file, g, path, self.session);
            return guard.save_fields(&mut child);
        }
        if self.link_exists(link)? {
            self.unlink(link)?;
        }
        let path = join(&self.path, link);
        let g = self
            .group
            .create_group(link)
            .ctx("create group", || path.clone())?;
        let token = ffi::token(&g).ctx("read object token", || path.clone())?;
        At {
            loc: &g,
            path: &path,
        }
        .write_value(TAG_ATTR, &Value::Str(O::TYPE_TAG.into()))?;
        self.session.visited.insert(addr, (path.clone(), token));
        lock(self.file).register(obj.erased(), addr, token, path.clone());
        let guard = obj.read();
        let mut child = SaveCtx::new(self.file, g, path, self.session);
        guard.save_fields(&mut child)
    }

    fn ensure_link(&self, link: &str, target: &str, token: Token) -> Result<()> {
        if self.link_exists(link)? {
            let same = self
                .group
                .group(link)
                .ok()
                .and_then(|g| ffi::token(&g).ok())
                == Some(token);
            if same {
                return Ok(());
            }
            self.unlink(link)?;
        }
        self.group
            .link_hard(target, link)
            .ctx("create hard link", || join(&self.path, link))
    }
}

impl<'a> LoadCtx<'a> {
    pub(crate) fn new(
        file: &'a FileInner,
        group: Group,
        path: String,
        session: &'a mut LoadSession,
    ) -> Self {
        LoadCtx {
            file,
            group,
            path,
            session,
        }
    }

    /// Reads one field; a missing field takes the type's missing value (`None`, empty) if it
    /// has one, and is an [`Error::MissingField`] otherwise.
    pub fn field<F: Field>(&mut self, name: &str) -> Result<F> {
        match F::load(self, name)? {
            Some(v) => Ok(v),
            None => F::if_missing().ok_or_else(|| Error::MissingField {
                path: self.path.clone(),
                field: name.to_owned(),
            }),
        }
    }

    /// Reads one field, taking `Default::default()` if the file lacks it (schema evolution).
    pub fn field_or_default<F: Field + Default>(&mut self, name: &str) -> Result<F> {
        Ok(F::load(self, name)?.unwrap_or_default())
    }

    /// The object's path in the file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The object's HDF5 group, for custom [`Field`] implementations.
    pub fn group(&self) -> &Group {
        &self.group
    }

    pub(crate) fn at(&self) -> At<'_> {
        At {
            loc: &self.group,
            path: &self.path,
        }
    }

    pub(crate) fn link_exists(&self, name: &str) -> Result<bool> {
        ffi::link_exists(&self.group, name).ctx("check link", || join(&self.path, name))
    }

    /// Reads the sub-group `link` as a shared object; `Ok(None)` if there is no such link.
    pub(crate) fn load_shared<O: Object>(&mut self, link: &str) -> Result<Option<Shared<O>>> {
        if !self.link_exists(link)? {
            return Ok(None);
        }
        let path = join(&self.path, link);
        let g = self.group.group(link).map_err(|_| Error::TypeMismatch {
            path: self.path.clone(),
            field: link.to_owned(),
            expected: format!("object {}", O::TYPE_TAG),
            found: "not a group".into(),
        })?;
        load_shared_group(self.file, g, path, self.session).map(Some)
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

/// Reads a group's type tag, if it has one.
pub(crate) fn read_tag(group: &Group, path: &str) -> Result<Option<String>> {
    match (At { loc: group, path }).read_value(TAG_ATTR)? {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(other) => Err(Error::Corrupt {
            path: format!("{path}@{TAG_ATTR}"),
            reason: format!("type tag is {}, not a string", other.type_name()),
        }),
    }
}

pub(crate) fn load_shared_group<O: Object>(
    file: &FileInner,
    g: Group,
    path: String,
    session: &mut LoadSession,
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
    let shared = Shared::<O>::empty();
    lock(file).register(shared.erased(), shared.addr(), token, path.clone());
    session.registered.push(token);
    let mut cx = LoadCtx::new(file, g, path, session);
    let value = O::load_fields(&mut cx)?;
    shared.fill(value);
    Ok(shared)
}
