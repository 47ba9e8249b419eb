//! [`File`]: an HDF5 file opened through h5pom.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::attr::At;
use crate::ctx::{Identity, lock};
use crate::error::{Error, Hdf5ResultExt, Result};
use crate::ffi::file as ffi;
use crate::folder::Folder;
use crate::pipeline::{ArrayOptions, Concurrency, Pipeline, WriteStats};
use crate::schema::Schema;
use crate::value::Value;

/// The on-disk format version this build writes (see `docs/FORMAT.md`).
pub const FORMAT_VERSION: u32 = 1;
/// Root attribute holding the format version.
pub const FORMAT_VERSION_ATTR: &str = "h5pom-format-version";
/// Root attribute naming the writer (`h5pom-rs <version>`).
pub const WRITER_ATTR: &str = "h5pom-writer";

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; created if missing (the original h5pom's default, mode `"a"`).
    OpenOrCreate,
    /// A new empty file; an existing one is truncated.
    Create,
}

pub(crate) struct FileInner {
    pub(crate) h5: hdf5::File,
    pub(crate) path: PathBuf,
    pub(crate) writable: bool,
    pub(crate) schema: Schema,
    pub(crate) identity: Mutex<Identity>,
    pipeline: Mutex<Pipeline>,
    array_options: RwLock<ArrayOptions>,
}

impl FileInner {
    /// The file's array pipeline (one writer at a time).
    pub(crate) fn pipeline(&self) -> MutexGuard<'_, Pipeline> {
        self.pipeline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The options of array fields that do not set their own.
    pub(crate) fn array_options(&self) -> ArrayOptions {
        self.array_options
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An HDF5 file holding h5pom objects. Cheap to clone (a shared handle).
#[derive(Clone)]
pub struct File {
    inner: Arc<FileInner>,
}

impl File {
    /// Creates a new file (truncating an existing one).
    pub fn create(path: impl AsRef<Path>, schema: Schema) -> Result<File> {
        Self::open_with(path, Mode::Create, schema)
    }

    /// Opens an existing file for reading and writing.
    pub fn open(path: impl AsRef<Path>, schema: Schema) -> Result<File> {
        Self::open_with(path, Mode::ReadWrite, schema)
    }

    /// Opens an existing file read-only.
    pub fn open_read_only(path: impl AsRef<Path>, schema: Schema) -> Result<File> {
        Self::open_with(path, Mode::Read, schema)
    }

    /// A file in memory only (HDF5's core driver without backing store; h5pom's `IN_MEMORY`).
    pub fn in_memory(schema: Schema) -> Result<File> {
        let (h5, path) = ffi::in_memory_h5("h5pom-in-memory").map_err(|source| Error::Open {
            path: PathBuf::from("<in-memory>"),
            source,
        })?;
        Self::wrap(h5, path, true, schema)
    }

    /// Opens `path` in the given mode.
    pub fn open_with(path: impl AsRef<Path>, mode: Mode, schema: Schema) -> Result<File> {
        Self::open_locking(path.as_ref(), mode, schema, true)
    }

    /// Opens `path` in the given mode with HDF5's own file lock off: the caller coordinates
    /// access to the file. HDF5 otherwise holds an exclusive `flock` on a file open for
    /// writing, which keeps every reader out until it is closed; the ECS bridge's crash-safe
    /// file pairs take the lock themselves, only while a file is being written.
    pub fn open_unlocked(path: impl AsRef<Path>, mode: Mode, schema: Schema) -> Result<File> {
        Self::open_locking(path.as_ref(), mode, schema, false)
    }

    /// Clears the "open for writing" status flags that libhdf5 leaves in the superblock of a
    /// file whose writer was killed (files with a version 3 superblock: written with
    /// `libver="latest"` or in SWMR mode), which otherwise make every later open fail with
    /// "file is already open for write". The same as `h5clear -s`. Files h5pom writes
    /// (superblock version 2) never carry these flags; a file without them is left unchanged.
    pub fn clear_status_flags(path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::FileNotFound {
                path: path.to_path_buf(),
            });
        }
        ffi::clear_status_flags(path).map_err(|source| Error::NotHdf5 {
            path: path.to_path_buf(),
            reason: source.to_string(),
        })
    }

    fn open_locking(path: &Path, mode: Mode, schema: Schema, locking: bool) -> Result<File> {
        let path = path.to_path_buf();
        let exists = path.exists();
        let needs_existing = matches!(mode, Mode::Read | Mode::ReadWrite);
        if needs_existing && !exists {
            return Err(Error::FileNotFound { path });
        }
        let open = |locking: bool| {
            let mut builder = hdf5::File::with_options();
            if !locking {
                builder.with_fapl(|p| p.file_locking(false));
            }
            match mode {
                Mode::Read => builder.open(&path),
                Mode::ReadWrite => builder.open_rw(&path),
                Mode::OpenOrCreate => builder.append(&path),
                Mode::Create => builder.create(&path),
            }
        };
        // A file this process already holds open with HDF5's lock off (the ECS bridge's slot
        // files) can only be opened again the same way ("file locking flag values don't
        // match"); the handles share one view of the file, so no lock is needed between them.
        // Told by the operation, not the message: the file is open here, and not locked by
        // another process.
        let result = match open(locking) {
            Err(e)
                if locking
                    && !ffi::is_lock_conflict(&e)
                    && exists
                    && ffi::is_open_in_process(&path) =>
            {
                open(false).map_err(|_| e)
            }
            r => r,
        };
        let h5 = result.map_err(|source| {
            if ffi::is_lock_conflict(&source) {
                Error::Locked {
                    path: path.clone(),
                    source,
                }
            } else if exists && mode != Mode::Create {
                Error::NotHdf5 {
                    path: path.clone(),
                    reason: source.to_string(),
                }
            } else {
                Error::Open {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        // Keep the descriptor (and its lock) out of child processes spawned while it is open.
        ffi::set_cloexec(&h5).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        Self::wrap(h5, path, mode != Mode::Read, schema)
    }

    fn wrap(h5: hdf5::File, path: PathBuf, writable: bool, schema: Schema) -> Result<File> {
        let at = At::new(&h5, "/");
        match at.read_value(FORMAT_VERSION_ATTR)? {
            Some(v) => {
                let found = v
                    .as_i128()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| Error::Corrupt {
                        path: format!("/@{FORMAT_VERSION_ATTR}"),
                        reason: format!("format version is {v}"),
                    })?;
                if found > FORMAT_VERSION {
                    return Err(Error::UnsupportedFormat {
                        path,
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            // A new file, or one written by the original h5pom (format 0): stamp it on write.
            None if writable => {
                at.write_value(FORMAT_VERSION_ATTR, &Value::U32(FORMAT_VERSION))?;
                at.write_value(
                    WRITER_ATTR,
                    &Value::Str(format!("h5pom-rs {}", env!("CARGO_PKG_VERSION"))),
                )?;
            }
            None => {}
        }
        Ok(File {
            inner: Arc::new(FileInner {
                h5,
                path,
                writable,
                schema,
                identity: Mutex::new(Identity::default()),
                pipeline: Mutex::new(Pipeline::new(Concurrency::default())),
                array_options: RwLock::new(ArrayOptions::default()),
            }),
        })
    }

    pub(crate) fn inner(&self) -> &FileInner {
        &self.inner
    }

    /// The root folder.
    pub fn root(&self) -> Folder {
        Folder::new(self.inner.clone(), (*self.inner.h5).clone(), "/".into())
    }

    /// The path the file was opened with (a generated name for in-memory files).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema the file was opened with.
    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// True if the file was opened read-only.
    pub fn is_read_only(&self) -> bool {
        !self.inner.writable
    }

    /// The format version recorded in the file (`None` for files of the original h5pom).
    pub fn format_version(&self) -> Result<Option<u32>> {
        let at = At::new(&self.inner.h5, "/");
        Ok(at
            .read_value(FORMAT_VERSION_ATTR)?
            .and_then(|v| v.as_i128())
            .and_then(|n| u32::try_from(n).ok()))
    }

    /// Sets the options (filters, chunking) of array fields that do not set their own
    /// (`#[h5pom(compression = "…")]`). Default: no compression, automatic chunks.
    pub fn set_array_options(&self, opts: ArrayOptions) {
        *self
            .inner
            .array_options
            .write()
            .unwrap_or_else(PoisonError::into_inner) = opts;
    }

    /// The default options of array fields.
    pub fn array_options(&self) -> ArrayOptions {
        self.inner.array_options()
    }

    /// Sets where array encoding and decoding run (default: the global rayon pool).
    pub fn set_concurrency(&self, c: Concurrency) {
        *self.inner.pipeline() = Pipeline::new(c);
    }

    /// Writes arrays collected by deferred saves, all in one parallel pass.
    pub fn write_deferred(&self, arrays: crate::array::DeferredArrays<'_>) -> Result<WriteStats> {
        self.write_deferred_ref(&arrays)
    }

    /// [`write_deferred`](Self::write_deferred), keeping the batch (to reuse its buffers).
    pub fn write_deferred_ref(
        &self,
        arrays: &crate::array::DeferredArrays<'_>,
    ) -> Result<WriteStats> {
        if arrays.is_empty() {
            return Ok(WriteStats::default());
        }
        arrays.write(&self.inner)
    }

    /// Writes HDF5's buffers to disk.
    pub fn flush(&self) -> Result<()> {
        self.inner.h5.flush().ctx("flush", || "/".into())
    }

    /// Forgets which in-memory [`Shared`](crate::Shared) objects correspond to which groups,
    /// so that the next load reads fresh copies.
    pub fn clear_identity_map(&self) {
        lock(&self.inner).clear();
    }

    /// The underlying `hdf5` file, for what h5pom does not cover.
    pub fn hdf5(&self) -> &hdf5::File {
        &self.inner.h5
    }

    /// Flushes and closes this handle. The file closes when the last handle (including
    /// folders and object handles) is dropped.
    pub fn close(self) -> Result<()> {
        if self.inner.writable {
            self.flush()?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("path", &self.inner.path)
            .field("writable", &self.inner.writable)
            .field("schema", &self.inner.schema)
            .finish()
    }
}
