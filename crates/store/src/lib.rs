//! # h5pom-store
//!
//! The object mapper of h5pom: Rust objects kept in sync with groups, attributes and datasets
//! of an HDF5 file. No ECS here; see `h5pom-ecs` for the bevy_ecs bridge.
//!
//! | Rust | HDF5 |
//! |---|---|
//! | an [`Object`] | a group with a `loader-key` attribute (its type tag) |
//! | a [`Scalar`] field | an attribute |
//! | an array field (`ndarray`) | a chunked, resizable dataset |
//! | a [`Shared`] reference | a sub-group, or a hard link when shared |
//! | a list / dict field | a prefixed family (`x-count`, `x-0`, … / `x-<key>`) |
//!
//! The layout is specified in `docs/FORMAT.md`.

mod array;
mod attr;
mod ctx;
mod embed;
mod error;
mod ffi;
mod field;
mod file;
mod fixed;
mod folder;
mod generic;
mod handle;
mod list;
pub mod mirror;
mod name;
mod object;
pub mod pipeline;
mod scalar;
mod schema;
pub mod series;
mod stack;
pub mod table;
mod value;

pub use array::{ArrayInfo, DeferredArrays, LazyArray};
pub use attr::{TYPE_SUFFIX, create_attr, get_attr, has_attr, overwrite_attr, set_attr};
pub use ctx::{CapturedArray, LoadCtx, RefMap, Row, RowRef, SaveCtx};
pub use embed::{Embed, capture_row, read_row, read_row_with_frames, write_row};
pub use error::{Error, Result};
pub use field::Field;
pub use file::{FORMAT_VERSION, FORMAT_VERSION_ATTR, File, Mode, WRITER_ATTR};
pub use fixed::{ArrayItem, array_from_value, array_to_value};
pub use folder::{AnyObject, Entry, EntryKind, Folder};
pub use generic::{Child, GenericObject};
pub use handle::Handle;
pub use list::{ListHandle, ListItem};
pub use name::{
    MAX_LIST_LEN, MAX_NAME_LEN, RESERVED_PREFIX, count_name, is_valid_key, item_name,
    validate_field_name, validate_object_name,
};
pub use object::{Object, Shared, SharedRead, SharedWrite, TAG_ATTR};
pub use pipeline::{
    ArrayOptions, CHUNK_TARGET_BYTES, Codec, Concurrency, Dtype, Element, Filters, auto_chunk,
};
pub use scalar::{Scalar, ScalarError};
pub use schema::Schema;
pub use stack::MAX_DEPTH;
pub use value::Value;

/// Re-exports of the libraries that appear in h5pom's API.
pub mod reexports {
    pub use chrono;
    pub use hdf5;
    pub use ndarray;
}
