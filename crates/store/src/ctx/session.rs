//! Load and save sessions: the state of one save or load call.

use std::collections::HashMap;

use crate::ffi::object::Token;
use crate::file::FileInner;
use crate::stack::StackBase;

use super::identity::lock;

/// State of one save call: the shared objects already written in it.
#[derive(Default)]
pub(crate) struct SaveSession {
    pub(super) visited: HashMap<usize, (String, Token)>,
}

/// State of one load call: the objects it registered, forgotten again if the load fails.
#[derive(Default)]
pub(crate) struct LoadSession {
    pub(super) registered: Vec<Token>,
    /// How many shared objects are being loaded, one inside the other.
    pub(super) depth: usize,
    /// Where the outermost of them began.
    pub(super) stack: Option<StackBase>,
}

impl LoadSession {
    pub(crate) fn rollback(&mut self, file: &FileInner) {
        let mut id = lock(file);
        for t in self.registered.drain(..) {
            id.forget(t);
        }
    }
}
