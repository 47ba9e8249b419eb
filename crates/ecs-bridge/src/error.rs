//! The bridge's error type.

use std::path::PathBuf;

/// Everything that can go wrong while syncing a world with a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EcsError {
    /// A store-level failure without more specific context.
    #[error(transparent)]
    Store(#[from] h5pom_store::Error),
    /// Writing or reading one component of one entity failed.
    #[error("entity {entity} (persistent id), component {component}: {source}")]
    Component {
        /// The entity's persistent id.
        entity: u64,
        /// The component's type tag.
        component: &'static str,
        /// What went wrong.
        #[source]
        source: h5pom_store::Error,
    },
    /// Writing or reading a resource failed.
    #[error("resource {resource}: {source}")]
    Resource {
        /// The resource's type tag.
        resource: &'static str,
        /// What went wrong.
        #[source]
        source: h5pom_store::Error,
    },
    /// A column table in the file is inconsistent, or a component cannot be stored as one.
    #[error("table {component}: {source}")]
    Table {
        /// The component's type tag.
        component: String,
        /// What is wrong.
        #[source]
        source: Box<h5pom_store::Error>,
    },
    /// A query of the world failed (bevy refused the system parameters).
    #[error("world query: {0}")]
    Query(#[from] bevy_ecs::system::SystemParamValidationError),
    /// A flush ran before the sync state was initialized from the world (a bug in h5pom).
    #[error("h5pom-ecs: flush before the sync state was initialized")]
    Uninitialized,
    /// A type tag that cannot name an ECS component or resource.
    #[error("invalid type tag {tag:?}: component and resource tags must match [A-Za-z0-9_]+")]
    InvalidTag {
        /// The tag.
        tag: String,
    },
    /// Two registered types share a tag.
    #[error("type tag {tag:?} is registered twice")]
    DuplicateTag {
        /// The tag.
        tag: String,
    },
    /// A type registered through bevy's reflection has a field h5pom cannot store (with the
    /// storage asked for: a column table takes only fields that fit one column).
    #[error(
        "{ty}: field {field:?} of type {field_type} cannot be stored ({storage:?} storage); see \
         docs/FORMAT.md, \"Reflected types\""
    )]
    UnsupportedField {
        /// The type's tag.
        ty: &'static str,
        /// The field, with dotted names for nested structs (empty: the type itself).
        field: String,
        /// The field's Rust type (its reflected type path).
        field_type: &'static str,
        /// The storage the type was registered with.
        storage: crate::Storage,
    },
    /// A file-system operation (snapshot rename, fsync) failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier flush failed part way; the sync writes nothing more. The file holds the last
    /// committed tick (see [`recover`](crate::recover)); resume from it to go on.
    #[error(
        "{path}: syncing stopped after a failed flush (the file keeps its last committed tick): {reason}"
    )]
    Halted {
        /// The synced file.
        path: PathBuf,
        /// The failure.
        reason: String,
    },
    /// The file has no ECS layout (no `/ecs` group) or a newer one than this build reads.
    #[error("{path}: {reason}")]
    NotEcsFile {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
}

/// A `Result` with [`EcsError`].
pub type Result<T, E = EcsError> = std::result::Result<T, E>;
