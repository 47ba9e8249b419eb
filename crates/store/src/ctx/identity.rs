//! The file-wide identity map: which in-memory [`Shared`](crate::Shared) object is which
//! HDF5 group.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError, Weak};

use crate::ffi::object::Token;
use crate::file::FileInner;

/// The file-wide identity map: which in-memory [`Shared`](crate::Shared) object is which HDF5 group.
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
    pub(super) fn register(
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

    pub(super) fn by_addr(&mut self, addr: usize) -> Option<(Token, String)> {
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

    pub(super) fn by_token(&mut self, token: Token) -> Option<Arc<dyn Any + Send + Sync>> {
        let addr = *self.by_token.get(&token)?;
        let live = self.by_ptr.get(&addr).and_then(|e| e.weak.upgrade());
        if live.is_none() {
            self.by_token.remove(&token);
            self.by_ptr.remove(&addr);
        }
        live
    }

    pub(super) fn forget(&mut self, token: Token) {
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

/// The file's identity map, locked (a poisoned lock is taken over: the map holds only weak
/// references and stays consistent).
pub(crate) fn lock(file: &FileInner) -> MutexGuard<'_, Identity> {
    file.identity.lock().unwrap_or_else(PoisonError::into_inner)
}
