//! Save and load contexts: the group being written or read (or a row of a column table),
//! plus the identity map that keeps shared objects shared and stops cycles.
//!
//! - `identity`: the file-wide identity map;
//! - `session`: the state of one save or load call;
//! - `row`: rows of column tables and the reference map;
//! - `save` / `load`: the two contexts.

mod identity;
mod load;
mod row;
mod save;
mod session;

use hdf5::Group;

use crate::error::Error;
use crate::file::FileInner;

pub(crate) use identity::{Identity, lock};
pub use load::LoadCtx;
pub(crate) use load::{load_in, load_shared_group};
pub use row::{RefMap, Row, RowRef};
pub use save::{CapturedArray, SaveCtx};
pub(crate) use session::{LoadSession, SaveSession};

/// A context writing to or reading from a group of `file`, within one session.
pub(crate) struct GroupTarget<'a, S> {
    pub(crate) file: &'a FileInner,
    pub(crate) group: Group,
    pub(crate) session: &'a mut S,
}

/// What a context writes to or reads from: a group, or a row of a column table.
pub(crate) enum Target<'a, S, R> {
    Group(GroupTarget<'a, S>),
    Row(R),
}

/// The error of a non-scalar field met in row mode.
fn not_columnar(path: &str, field: &str) -> Error {
    Error::NotColumnar {
        path: path.to_owned(),
        field: field.to_owned(),
    }
}

/// `name` with the context's prefix, if any.
fn full_name<'n>(prefix: Option<&str>, name: &'n str) -> std::borrow::Cow<'n, str> {
    match prefix {
        Some(p) => std::borrow::Cow::Owned(format!("{p}{name}")),
        None => std::borrow::Cow::Borrowed(name),
    }
}
