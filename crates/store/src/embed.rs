//! Entry points for layers built on the store (the ECS bridge): write an object's fields into
//! a group it shares with others (under a name prefix), or into a row of a column table, with
//! external references mapped through a [`RefMap`].

use hdf5::Group;

use crate::array::DeferredArrays;
use crate::ctx::{LoadCtx, LoadSession, RefMap, Row, RowRef, SaveCtx, SaveSession};
use crate::error::Result;
use crate::file::File;
use crate::object::Object;

/// Options of [`File::write_fields`] and [`File::read_fields`].
#[derive(Clone, Copy, Default)]
pub struct Embed<'a> {
    /// Prefix of every field name (e.g. `"Health."`).
    pub prefix: Option<&'a str>,
    /// Map for external references.
    pub refs: Option<&'a dyn RefMap>,
    /// The caller just created the group and has written none of these fields' names in it:
    /// attributes are created without looking for stored ones (about half the HDF5 calls of
    /// a first write). Writing into a group that holds one of the names then fails with an
    /// HDF5 error; nothing is overwritten.
    pub fresh: bool,
}

impl File {
    /// Writes every field of `obj` into `group` (at `path`), names prefixed as `embed` says.
    /// No type tag is written: the group belongs to the caller.
    pub fn write_fields<O: Object>(
        &self,
        group: &Group,
        path: &str,
        obj: &O,
        embed: Embed<'_>,
    ) -> Result<()> {
        let mut session = SaveSession::default();
        let mut cx = SaveCtx::new(self.inner(), group.clone(), path.to_owned(), &mut session);
        if let Some(p) = embed.prefix {
            cx = cx.with_prefix(p);
        }
        cx = cx.with_fresh(embed.fresh);
        if let Some(r) = embed.refs {
            cx = cx.with_refs(r);
        }
        obj.save_fields(&mut cx)
    }

    /// Like [`write_fields`](Self::write_fields), but array fields are collected into `sink`
    /// (borrowing `obj`'s arrays, no copy) to be written by one parallel pass of
    /// [`write_deferred`](Self::write_deferred) together with other objects' arrays.
    pub fn write_fields_deferred<'d, O: Object>(
        &self,
        group: &Group,
        path: &str,
        obj: &'d O,
        embed: Embed<'_>,
        sink: &mut DeferredArrays<'d>,
    ) -> Result<()> {
        let mut session = SaveSession::default();
        let mut cx = SaveCtx::new(self.inner(), group.clone(), path.to_owned(), &mut session)
            .with_deferred(sink);
        if let Some(p) = embed.prefix {
            cx = cx.with_prefix(p);
        }
        cx = cx.with_fresh(embed.fresh);
        if let Some(r) = embed.refs {
            cx = cx.with_refs(r);
        }
        obj.save_fields(&mut cx)
    }

    /// Reads an object written by [`write_fields`](Self::write_fields).
    pub fn read_fields<O: Object>(&self, group: &Group, path: &str, embed: Embed<'_>) -> Result<O> {
        let mut session = LoadSession::default();
        let r = {
            let mut cx = LoadCtx::new(self.inner(), group.clone(), path.to_owned(), &mut session);
            cx.set_embed(embed.prefix, embed.refs);
            O::load_fields(&mut cx)
        };
        if r.is_err() {
            session.rollback(self.inner());
        }
        r
    }
}

/// Appends `obj`'s fields to `row` (all fields must be scalars or external references).
/// The first call also records the field names in `row.names`.
pub fn write_row<O: Object>(obj: &O, row: &mut Row, refs: Option<&dyn RefMap>) -> Result<()> {
    // An empty path (no allocation per row): callers name the table in their errors.
    let mut cx = SaveCtx::row(row, String::new());
    if let Some(r) = refs {
        cx = cx.with_refs(r);
    }
    obj.save_fields(&mut cx)
}

/// Reads an object from one row of a column table.
pub fn read_row<O: Object>(row: RowRef<'_>, refs: Option<&dyn RefMap>) -> Result<O> {
    let mut cx = LoadCtx::row(row, String::new());
    if let Some(r) = refs {
        cx = cx.with_refs(r);
    }
    O::load_fields(&mut cx)
}

/// Appends `obj`'s scalar fields to `row` as [`write_row`] does, and captures its array fields
/// into `arrays` instead of refusing them (histories store them as frame series).
pub fn capture_row<'d, O: Object>(
    obj: &'d O,
    row: &mut Row,
    refs: Option<&dyn RefMap>,
    arrays: &mut Vec<crate::ctx::CapturedArray<'d>>,
) -> Result<()> {
    let mut cx = SaveCtx::row(row, String::new()).with_captured(arrays);
    if let Some(r) = refs {
        cx = cx.with_refs(r);
    }
    obj.save_fields(&mut cx)
}

/// Reads an object from one row, its array fields from frame `sample` of the series in
/// `group` (see [`capture_row`]).
pub fn read_row_with_frames<O: Object>(
    row: RowRef<'_>,
    refs: Option<&dyn RefMap>,
    group: &hdf5::Group,
    path: &str,
    sample: usize,
) -> Result<O> {
    let mut cx = LoadCtx::row(row, String::new()).with_frames(group, path, sample);
    if let Some(r) = refs {
        cx = cx.with_refs(r);
    }
    O::load_fields(&mut cx)
}
