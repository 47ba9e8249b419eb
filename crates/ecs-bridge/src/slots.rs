//! Crash-safe file pairs: the synced world lives in two complete HDF5 files (slots `<name>.a`
//! and `<name>.b`), and `<name>` is a symbolic link naming the slot that holds the last
//! committed tick. A flush writes the *other* slot, flushes it (and with
//! [`Durability::Power`] syncs it to disk), then commits by atomically replacing the link.
//! A writer killed at any instant leaves the link naming a complete file.
//!
//! The layout and the guarantee are specified in `docs/FORMAT.md` ("Durability").

use std::path::{Path, PathBuf};

use h5pom_store::reexports::hdf5;
use h5pom_store::{File, Schema};

use crate::error::{EcsError, Result};
use crate::layout::{ECS_GROUP, TICK_ATTR};

/// How much of the synced file survives a crash of the writer. See `docs/FORMAT.md`,
/// "Durability", for the exact guarantee of each level and its measured cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// One file written in place. Fastest, and the only choice for in-memory files; a writer
    /// killed in the middle of a flush may leave a file libhdf5 cannot open.
    Unprotected,
    /// Two slots and a committing link (the default). A writer killed at any instant (SIGKILL,
    /// panic, out-of-memory kill) leaves a file that opens and holds the last tick whose flush
    /// returned `Ok`. An operating-system crash or power loss may lose the file.
    #[default]
    Process,
    /// As [`Process`](Self::Process), and every commit is synced to disk (`fsync` of the slot,
    /// then of the directory after the link is replaced) before the flush returns: the last
    /// acknowledged tick also survives an operating-system crash or power loss, on storage that
    /// honours `fsync`.
    Power,
}

/// The two slot files of a synced file `path`: `<path>.a` and `<path>.b`.
pub fn slot_paths(path: &Path) -> [PathBuf; 2] {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [
        path.with_file_name(format!("{name}.a")),
        path.with_file_name(format!("{name}.b")),
    ]
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EcsError {
    let path = path.to_path_buf();
    move |source| EcsError::Io { op, path, source }
}

/// Which slot `path` names, if it is the link of a slot pair (`None` for a plain file).
pub(crate) fn committed_slot(path: &Path) -> Option<usize> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::read_link(path).ok()?;
    let [a, b] = slot_paths(path);
    let name = target.file_name()?;
    if Some(name) == a.file_name() {
        Some(0)
    } else if Some(name) == b.file_name() {
        Some(1)
    } else {
        None
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Makes `path` name slot `slot`: a new link under a temporary name, renamed over `path`
/// (atomic: a reader or a recovery sees the old or the new link, never neither).
pub(crate) fn commit(path: &Path, slot: usize, durable: bool) -> Result<()> {
    let slots = slot_paths(path);
    let target = slots[slot].file_name().unwrap_or_default();
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    symlink(Path::new(target), &tmp).map_err(io_err("create link", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("commit (rename link to)", path))?;
    if durable {
        sync_dir(path)?;
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "crash-safe slot pairs need symbolic links (Unix); use Durability::Unprotected",
    ))
}

/// Copies slot `from` over slot `to` (through a temporary file, so `to` is never half
/// written under its name), optionally synced to disk.
pub(crate) fn copy_slot(from: &Path, to: &Path, durable: bool) -> Result<()> {
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    let tmp = to.with_file_name(format!(".{name}.copy-{}", std::process::id()));
    std::fs::copy(from, &tmp).map_err(io_err("copy slot to", &tmp))?;
    if durable {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err("sync", &tmp))?;
    }
    std::fs::rename(&tmp, to).map_err(io_err("rename slot to", to))?;
    Ok(())
}

/// What [`recover`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The file holding the last committed tick (a slot of a pair, or `path` itself).
    pub committed: PathBuf,
    /// The tick stored in it (`/ecs@tick`: completed flushes).
    pub tick: u64,
    /// True if `path` is a crash-safe slot pair; false for a plain file.
    pub slot_pair: bool,
    /// True if the other slot was rebuilt from the committed one.
    pub rebuilt: bool,
}

/// Makes a synced file whose writer died usable again, and says which tick it holds.
///
/// For a slot pair ([`Durability::Process`] or [`Power`](Durability::Power)): checks that the
/// committed slot opens and carries a tick, then rebuilds the other slot (which a killed
/// flush may have left half written) as a copy of it. For a plain file: clears libhdf5's
/// "open for write" superblock flags if a killed writer left them
/// ([`File::clear_status_flags`]) and checks that the file opens. Never modifies the
/// committed data. Must not run while a writer still has the file open.
///
/// The command-line equivalent is `h5pom recover <file>`.
pub fn recover(path: impl AsRef<Path>) -> Result<Recovery> {
    let path = path.as_ref();
    if let Some(slot) = committed_slot(path) {
        let slots = slot_paths(path);
        let tick = read_tick(&slots[slot])?;
        copy_slot(&slots[slot], &slots[1 - slot], true)?;
        return Ok(Recovery {
            committed: slots[slot].clone(),
            tick,
            slot_pair: true,
            rebuilt: true,
        });
    }
    if std::fs::symlink_metadata(path).is_err() {
        return Err(h5pom_store::Error::FileNotFound {
            path: path.to_path_buf(),
        }
        .into());
    }
    File::clear_status_flags(path)?;
    let tick = read_tick(path)?;
    Ok(Recovery {
        committed: path.to_path_buf(),
        tick,
        slot_pair: false,
        rebuilt: false,
    })
}

/// The tick (`/ecs@tick`) of a synced file, opened read-only.
pub(crate) fn read_tick(path: &Path) -> Result<u64> {
    let file = File::open_read_only(path, Schema::new())?;
    let not_ecs = |reason: String| EcsError::NotEcsFile {
        path: path.to_path_buf(),
        reason,
    };
    let ecs = file
        .hdf5()
        .group(ECS_GROUP)
        .map_err(|e: hdf5::Error| not_ecs(format!("no /{ECS_GROUP} group: {e}")))?;
    crate::sync::read_u64(&ecs, TICK_ATTR)
        .ok_or_else(|| not_ecs(format!("no readable /{ECS_GROUP}@{TICK_ATTR}")))
}
