//! The store's error type: every failure carries where it happened (file, object path, field).

use std::path::PathBuf;

/// A `Result` whose error is the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while mapping objects to and from an HDF5 file.
///
/// Variants carry structured context: the file path, the object's path inside the file
/// (e.g. `/joe/friends-0`), the field name, and expected versus found types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file does not exist.
    #[error("file not found: {path}")]
    FileNotFound {
        /// The path that was opened.
        path: PathBuf,
    },
    /// The file exists but is not an HDF5 file (or is damaged beyond opening).
    #[error("not an HDF5 file (or unreadable): {path}: {reason}")]
    NotHdf5 {
        /// The path that was opened.
        path: PathBuf,
        /// What libhdf5 reported.
        reason: String,
    },
    /// The file is locked: libhdf5 could not take its `flock` because another process holds a
    /// conflicting one (a writer holds an exclusive lock while the file is open). Detected from
    /// libhdf5's error codes (`H5E_CANTLOCKFILE`), not its message.
    #[error("{path} is locked, probably open for writing in another process")]
    Locked {
        /// The path that was opened.
        path: PathBuf,
        /// The HDF5 error.
        source: hdf5::Error,
    },
    /// A file could not be created or opened for another reason.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// The HDF5 error.
        source: hdf5::Error,
    },
    /// The file was written by a newer h5pom whose format this version cannot read.
    #[error(
        "{path}: format version {found} is newer than the newest this h5pom reads ({supported})"
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A write was attempted on a file opened read-only.
    #[error("the file is open read-only; cannot {op} at {path}")]
    ReadOnly {
        /// What was attempted.
        op: &'static str,
        /// The object path.
        path: String,
    },
    /// An HDF5 call failed.
    #[error("HDF5 failed to {op} at {path}: {source}")]
    Hdf5 {
        /// What was being done ("create group", "write attribute", …).
        op: &'static str,
        /// The object path in the file, with the field or attribute name if any.
        path: String,
        /// The HDF5 error.
        source: hdf5::Error,
    },
    /// No object (group) at this path.
    #[error("no object at {path}")]
    NotFound {
        /// The object path.
        path: String,
    },
    /// An object already exists under this name and overwriting was not asked for.
    #[error("an object already exists at {path}")]
    AlreadyExists {
        /// The object path.
        path: String,
    },
    /// A name is not a valid HDF5 link name or h5pom field name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A dictionary key is outside `[A-Za-z0-9_]+`.
    #[error(
        "invalid key {key:?} for dict field {field:?} at {path}: keys must match [A-Za-z0-9_]+"
    )]
    InvalidKey {
        /// The object path.
        path: String,
        /// The dict field.
        field: String,
        /// The offending key.
        key: String,
    },
    /// A field required by the Rust type is absent from the file.
    #[error("field {field:?} is missing at {path}")]
    MissingField {
        /// The object path.
        path: String,
        /// The field name.
        field: String,
    },
    /// The stored value's type does not match the Rust field's type.
    #[error("type mismatch for field {field:?} at {path}: expected {expected}, found {found}")]
    TypeMismatch {
        /// The object path.
        path: String,
        /// The field (attribute or dataset) name.
        field: String,
        /// What the Rust type needs.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// An integer in the file does not fit the Rust field's type.
    #[error("value {value} of field {field:?} at {path} does not fit in {expected}")]
    OutOfRange {
        /// The object path.
        path: String,
        /// The field name.
        field: String,
        /// The Rust type.
        expected: &'static str,
        /// The stored value.
        value: String,
    },
    /// The group's type tag (`loader-key`) is not the one the Rust type expects.
    #[error("object at {path} has type tag {found:?}, expected {expected:?}")]
    WrongTag {
        /// The object path.
        path: String,
        /// The tag of the requested Rust type.
        expected: String,
        /// The tag stored in the file (`None` if the group has no tag).
        found: Option<String>,
    },
    /// Two types in one schema declare the same type tag.
    #[error("type tag {tag:?} is declared by both {first} and {second}")]
    DuplicateTag {
        /// The tag.
        tag: String,
        /// The Rust type registered first.
        first: &'static str,
        /// The Rust type registered second.
        second: &'static str,
    },
    /// The file's structure contradicts the h5pom layout (e.g. a negative list count).
    #[error("corrupt h5pom layout at {path}: {reason}")]
    Corrupt {
        /// The object path (and field).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A field that is not a scalar was written to or read from a column table row.
    #[error("field {field:?} at {path} is not a scalar: it cannot be stored in a column table")]
    NotColumnar {
        /// The object path (or table).
        path: String,
        /// The field.
        field: String,
    },
    /// An external reference (an ECS entity) was saved or loaded without a reference map.
    #[error(
        "field {field:?} at {path} holds an external reference but no reference map is installed"
    )]
    NoRefMap {
        /// The object path.
        path: String,
        /// The field.
        field: String,
    },
    /// An external reference points at something not persisted (or unknown on load).
    #[error("field {field:?} at {path} refers to an entity that is not persisted")]
    DanglingRef {
        /// The object path.
        path: String,
        /// The field.
        field: String,
    },
    /// Saving: a reference field holds a handle that the [`RefMap`](crate::RefMap) cannot map
    /// (an entity that is not persisted, or no longer exists).
    #[error("field {field:?} at {path} refers to an entity that is not persisted")]
    UnpersistedRef {
        /// The object path.
        path: String,
        /// The field.
        field: String,
        /// The handle's bits (an ECS `Entity::to_bits`).
        target: u64,
    },
    /// The array pipeline failed (encoding, decoding, or writing chunks).
    #[error("array {path}: {source}")]
    Pipeline {
        /// The dataset path.
        path: String,
        /// What went wrong.
        #[source]
        source: Box<crate::pipeline::PipelineError>,
    },
    /// Array options given as text (`#[h5pom(compression = "…")]`) do not parse.
    #[error("invalid array options for {path}: {reason}")]
    InvalidOptions {
        /// The field.
        path: String,
        /// Why.
        reason: String,
    },
    /// An index outside a list's length.
    #[error("index {index} out of bounds for list field {field:?} of length {len} at {path}")]
    IndexOutOfBounds {
        /// The object path.
        path: String,
        /// The list field.
        field: String,
        /// The index asked for.
        index: usize,
        /// The list's length.
        len: usize,
    },
    /// A column table cannot be written or read (see [`table`](crate::table)).
    #[error("table {path}: {source}")]
    Table {
        /// The table's group.
        path: String,
        /// What is wrong.
        #[source]
        source: Box<crate::table::TableError>,
    },
}

impl Error {
    pub(crate) fn hdf5(op: &'static str, path: impl Into<String>, source: hdf5::Error) -> Self {
        Error::Hdf5 {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Attach an operation and a location to an HDF5 result.
pub(crate) trait Hdf5ResultExt<T> {
    /// Map an HDF5 error into [`Error::Hdf5`] with context.
    fn ctx(self, op: &'static str, path: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Hdf5ResultExt<T> for hdf5::Result<T> {
    fn ctx(self, op: &'static str, path: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::hdf5(op, path(), source))
    }
}
