//! Encoded chunks shared between two writes of the same bytes (a history frame and the run
//! file's copy of the same array, in one flush): each chunk is encoded once.
//!
//! A scope ([`share_encoded_chunks`]) is opened by the caller on its thread. Inside it, an
//! appended frame publishes its encoded chunks with a copy of its raw bytes; a later write of
//! an array with the same bytes (same address and length, equal content: compared, never
//! assumed), element size, shape, chunk shape and filters takes the published chunks instead
//! of encoding them again. The scope's end drops everything. Outside a scope nothing is kept.
//! The memo is per thread: the writes that share must run on the scope's thread (encoding
//! itself still runs on the pool).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::encode::EncodeSpec;
use super::options::Codec;

/// What identifies an array's encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    addr: usize,
    len: usize,
    elem: usize,
    shape: Vec<usize>,
    chunk: Vec<usize>,
    shuffle: bool,
    codec: Codec,
}

impl Key {
    /// The key of `spec`'s bytes encoded over `shape` in chunks `chunk` (a frame's shape and
    /// chunk without the leading sample axis).
    pub(crate) fn new(spec: &EncodeSpec<'_>, shape: &[usize], chunk: &[usize]) -> Key {
        Key {
            addr: spec.bytes.as_ptr() as usize,
            len: spec.bytes.len(),
            elem: spec.elem,
            shape: shape.to_vec(),
            chunk: chunk.to_vec(),
            shuffle: spec.shuffle,
            codec: spec.codec,
        }
    }
}

/// Encoded chunks of one array, in the grid's order, with the raw bytes they encode.
pub(crate) struct Shared {
    raw: Vec<u8>,
    pub(crate) chunks: Vec<Vec<u8>>,
}

thread_local! {
    static MEMO: RefCell<Option<HashMap<Key, Arc<Shared>>>> = const { RefCell::new(None) };
}

/// An open sharing scope on this thread; dropping it ends the scope.
#[must_use = "the scope ends when this is dropped"]
pub struct ShareScope {
    outer: bool,
}

/// Opens a sharing scope on this thread (nested scopes end with the outermost).
pub fn share_encoded_chunks() -> ShareScope {
    let outer = MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.is_some() {
            false
        } else {
            *m = Some(HashMap::new());
            true
        }
    });
    ShareScope { outer }
}

impl Drop for ShareScope {
    fn drop(&mut self) {
        if self.outer {
            MEMO.with(|m| *m.borrow_mut() = None);
        }
    }
}

/// True inside a scope.
pub(crate) fn active() -> bool {
    MEMO.with(|m| m.borrow().is_some())
}

/// Publishes the encoded `chunks` of `raw` under `key` (nothing outside a scope).
pub(crate) fn publish(key: Key, raw: &[u8], chunks: Vec<Vec<u8>>) {
    MEMO.with(|m| {
        if let Some(map) = m.borrow_mut().as_mut() {
            map.insert(
                key,
                Arc::new(Shared {
                    raw: raw.to_vec(),
                    chunks,
                }),
            );
        }
    });
}

/// The chunks published under `key` for bytes equal to `raw`.
pub(crate) fn lookup(key: &Key, raw: &[u8]) -> Option<Arc<Shared>> {
    MEMO.with(|m| {
        let m = m.borrow();
        let found = m.as_ref()?.get(key)?;
        (found.raw == raw).then(|| Arc::clone(found))
    })
}
