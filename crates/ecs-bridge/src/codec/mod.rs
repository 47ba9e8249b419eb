//! How one persisted type becomes attributes of a group, a row of a column table or a
//! resource group, and back: the seam between the sync machinery ([`GroupSync`],
//! [`TableSync`], [`ResSync`]) and the type's own description of its fields.
//!
//! Two codecs: [`DeriveCodec`] for types deriving h5pom's `Object`, and (feature `reflect`)
//! [`ReflectCodec`] for types deriving bevy's `Reflect`. Both give the same layout for the
//! same struct, so the sync machinery (change detection, flush, load) is shared. History mode
//! asks the same two codecs for rows and array frames (their `RowCodec` impls, in
//! `history::rows` and `reflect::history`).
//!
//! [`GroupSync`]: crate::component::GroupSync
//! [`TableSync`]: crate::table::TableSync
//! [`ResSync`]: crate::resource::ResSync

#[cfg(feature = "reflect")]
pub(crate) mod reflect;

use h5pom_store::reexports::hdf5::Group;
use h5pom_store::{
    DeferredArrays, Embed, File, Folder, Object, RefMap, Row, RowRef, read_row, write_row,
};

#[cfg(feature = "reflect")]
pub(crate) use reflect::ReflectCodec;

/// The fields of a persisted type `T`, whichever way `T` describes them.
pub(crate) trait Codec<T>: Send + Sync + 'static {
    /// The type tag (`<Tag>` of the layout).
    fn tag(&self) -> &'static str;
    /// Writes every field of `value` into `group` (at `path`), names prefixed as `embed`
    /// says; array fields may be collected into `sink` (written later, in parallel).
    fn write_fields<'d>(
        &self,
        file: &File,
        group: &Group,
        path: &str,
        value: &'d T,
        embed: Embed<'_>,
        sink: &mut DeferredArrays<'d>,
    ) -> h5pom_store::Result<()>;
    /// Reads what [`write_fields`](Self::write_fields) wrote.
    fn read_fields(
        &self,
        file: &File,
        group: &Group,
        path: &str,
        embed: Embed<'_>,
    ) -> h5pom_store::Result<T>;
    /// Appends `value`'s fields to `row` (names recorded by the first call into an empty row).
    fn write_row(
        &self,
        value: &T,
        row: &mut Row,
        refs: Option<&dyn RefMap>,
    ) -> h5pom_store::Result<()>;
    /// Reads a value from one row of a column table.
    fn read_row(&self, row: RowRef<'_>, refs: Option<&dyn RefMap>) -> h5pom_store::Result<T>;
    /// True if every field is a scalar: [`write_row`](Self::write_row) gives the values that
    /// [`write_fields`](Self::write_fields) stores as attributes, one per row name (under the
    /// prefix), and nothing else.
    fn columnar(&self) -> bool {
        false
    }
    /// Checks, writing nothing, that every reference of `value` can be stored: fails with
    /// [`UnpersistedRef`](h5pom_store::Error::UnpersistedRef) if one cannot (the group
    /// storage then skips the component whole). Types without references have nothing to
    /// check.
    fn check_refs(&self, _value: &T, _refs: &dyn RefMap) -> h5pom_store::Result<()> {
        Ok(())
    }
    /// Stores `value` as the group `<tag>` of `folder` (tagged with `loader-key`), replacing
    /// what was there.
    fn insert(&self, folder: &Folder, value: &T) -> h5pom_store::Result<()>;
    /// Rewrites the fields of the existing group `<tag>` of `folder`.
    fn save(&self, folder: &Folder, value: &T) -> h5pom_store::Result<()>;
}

/// Types deriving h5pom's `Object`: the derive's own field code does the work.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DeriveCodec;

impl<T: Object> Codec<T> for DeriveCodec {
    fn tag(&self) -> &'static str {
        T::TYPE_TAG
    }

    fn check_refs(&self, value: &T, refs: &dyn RefMap) -> h5pom_store::Result<()> {
        // As a row, arrays captured (borrowed): a fresh row, since a failed save leaves part
        // of the names. A type with sub-objects cannot be a row: its references are checked
        // as it is written.
        let mut row = Row::default();
        let mut arrays = Vec::new();
        match h5pom_store::capture_row(value, &mut row, Some(refs), &mut arrays) {
            Err(e) if matches!(e, h5pom_store::Error::UnpersistedRef { .. }) => Err(e),
            _ => Ok(()),
        }
    }

    fn write_fields<'d>(
        &self,
        file: &File,
        group: &Group,
        path: &str,
        value: &'d T,
        embed: Embed<'_>,
        sink: &mut DeferredArrays<'d>,
    ) -> h5pom_store::Result<()> {
        file.write_fields_deferred(group, path, value, embed, sink)
    }

    fn read_fields(
        &self,
        file: &File,
        group: &Group,
        path: &str,
        embed: Embed<'_>,
    ) -> h5pom_store::Result<T> {
        file.read_fields(group, path, embed)
    }

    fn write_row(
        &self,
        value: &T,
        row: &mut Row,
        refs: Option<&dyn RefMap>,
    ) -> h5pom_store::Result<()> {
        write_row(value, row, refs)
    }

    fn read_row(&self, row: RowRef<'_>, refs: Option<&dyn RefMap>) -> h5pom_store::Result<T> {
        read_row(row, refs)
    }

    fn columnar(&self) -> bool {
        T::NOT_COLUMNAR.is_none()
    }

    fn insert(&self, folder: &Folder, value: &T) -> h5pom_store::Result<()> {
        folder.insert(T::TYPE_TAG, value).map(|_| ())
    }

    fn save(&self, folder: &Folder, value: &T) -> h5pom_store::Result<()> {
        folder.get::<T>(T::TYPE_TAG).and_then(|h| h.save(value))
    }
}
