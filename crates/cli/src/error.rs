//! The inspector's errors: each is reported as one line on stderr, exit status 1.

use std::fmt;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The store could not open the file or read an object.
    Store(h5pom_store::Error),
    /// A raw HDF5 call (dataset metadata or values) failed at `path`.
    Hdf5 {
        /// The object or dataset path.
        path: String,
        /// What was being done.
        op: &'static str,
        /// The HDF5 error.
        source: h5pom_store::reexports::hdf5::Error,
    },
    /// PATH names nothing in the file.
    NoSuchPath(String),
    /// PATH names something that is neither a group nor a dataset.
    NotInspectable {
        /// The path.
        path: String,
        /// What it is.
        what: String,
    },
    /// Writing the output failed.
    Io(std::io::Error),
    /// Recovering a synced ECS file failed.
    Ecs(h5pom_ecs::EcsError),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Store(h5pom_store::Error::NotFound { path }) => {
                write!(f, "no such path in the file: {path}")
            }
            CliError::Store(h5pom_store::Error::Locked { path, .. }) => {
                write!(
                    f,
                    "cannot open {}: it is locked, probably open for writing in another \
                     process (HDF5_USE_FILE_LOCKING=FALSE reads it anyway, at your own risk)",
                    path.display()
                )
            }
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Hdf5 { path, op, source } => write!(f, "cannot {op} at {path}: {source}"),
            CliError::NoSuchPath(path) => write!(f, "no such path in the file: {path}"),
            CliError::NotInspectable { path, what } => {
                write!(f, "{path} is {what}, not a group or a dataset")
            }
            CliError::Io(e) => write!(f, "cannot write the output: {e}"),
            CliError::Ecs(e) => write!(f, "{e}"),
        }
    }
}

impl From<h5pom_store::Error> for CliError {
    fn from(e: h5pom_store::Error) -> Self {
        CliError::Store(e)
    }
}

/// Attaches a path and an operation to a raw HDF5 result.
pub(crate) trait Hdf5Ctx<T> {
    /// Maps the error into [`CliError::Hdf5`].
    fn at(self, op: &'static str, path: &str) -> Result<T, CliError>;
}

impl<T> Hdf5Ctx<T> for h5pom_store::reexports::hdf5::Result<T> {
    fn at(self, op: &'static str, path: &str) -> Result<T, CliError> {
        self.map_err(|source| CliError::Hdf5 {
            path: path.to_owned(),
            op,
            source,
        })
    }
}
