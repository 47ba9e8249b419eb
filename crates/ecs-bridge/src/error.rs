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
    /// A component was not written this tick because a reference field points at an entity
    /// the file cannot hold (see [`DanglingRefs`](crate::DanglingRefs)). Every other
    /// component is written; this one is retried at each flush and written once the target
    /// is persisted (or the reference changes).
    #[error(
        "entity {entity} (persistent id), component {component}: field {field:?} refers to \
         entity {target} which {state}; the component was not written this tick"
    )]
    DanglingRef {
        /// The referring entity's persistent id.
        entity: u64,
        /// The component's type tag.
        component: &'static str,
        /// The reference field.
        field: String,
        /// The entity referred to.
        target: bevy_ecs::entity::Entity,
        /// Why it cannot be stored.
        state: RefTarget,
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
    /// A component registered as a table has a field that cannot be a column.
    #[error(
        "component {component} cannot be a table: field {field:?} is not a scalar (tables hold \
         numbers, bool, strings, Option of those and Entity references; register it with \
         `component` for group storage)"
    )]
    NotColumnar {
        /// The component's type tag.
        component: &'static str,
        /// The first field that cannot be a column.
        field: &'static str,
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
    /// A load alongside the world's entities ([`LoadMode::Add`](crate::LoadMode::Add)) found
    /// stored ids the world already uses (the file, or another copy of it, is loaded
    /// already). Nothing was loaded.
    #[error(
        "{path}: {taken} stored persistent id(s) are already in the world (the first: {first}); \
         nothing was loaded. Use LoadMode::Replace to replace the world's persisted entities, \
         or LoadMode::Renumber to load a second copy"
    )]
    AlreadyLoaded {
        /// The file.
        path: PathBuf,
        /// How many stored ids are in use.
        taken: usize,
        /// The smallest of them.
        first: u64,
    },
    /// A subset load ([`Registry::load_ids`](crate::Registry::load_ids)) asked for
    /// persistent ids the file does not hold. Nothing was loaded.
    #[error(
        "{path}: {missing} requested persistent id(s) are not in the file (the first: {first}); nothing was loaded"
    )]
    NotInFile {
        /// The file.
        path: PathBuf,
        /// How many requested ids are missing.
        missing: usize,
        /// The smallest of them.
        first: u64,
    },
    /// A request needs the synced file, and the world has no [`H5Sync`](crate::H5Sync) (the
    /// file could not be opened).
    #[error("no synced file: the world has no H5Sync (was the file opened?)")]
    NoSync,
    /// A rollback named a checkpoint that was never taken.
    #[error("no checkpoint named {name:?}")]
    NoCheckpoint {
        /// The name.
        name: String,
    },
    /// A sharded run could not be read or committed (a shard without the common tick, a
    /// writer that failed its part of a commit).
    #[error("sharded run {path}: {reason}")]
    Sharded {
        /// The run file (or the shard concerned).
        path: PathBuf,
        /// What went wrong.
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

/// Why a referenced entity cannot be stored ([`EcsError::DanglingRef`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefTarget {
    /// It exists but has no [`Persist`](crate::Persist) component.
    NotPersisted,
    /// It was despawned.
    Despawned,
}

impl std::fmt::Display for RefTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefTarget::NotPersisted => "exists but is not persisted (no Persist component)",
            RefTarget::Despawned => "was despawned",
        })
    }
}

/// A `Result` with [`EcsError`].
pub type Result<T, E = EcsError> = std::result::Result<T, E>;
