//! Crash-safe file pairs: the synced world lives in two complete HDF5 files (slots `<name>.a`
//! and `<name>.b`), and `<name>` is a symbolic link naming the slot that holds the last
//! committed tick. A flush writes the *other* slot, flushes it (and with
//! [`Durability::Power`] syncs it to disk), then commits by atomically replacing the link.
//! A writer killed at any instant leaves the link naming a complete file.
//!
//! The layout and the guarantee are specified in `docs/FORMAT.md` ("Durability"). This module
//! is file-system only: it never opens an HDF5 file.

use std::path::{Path, PathBuf};

use crate::error::{EcsError, Result};

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

/// A point of the slot-pair commit protocol, in protocol order: the seam where crash tests
/// stop a flush (see `H5Sync`'s tests), as a killed writer would stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The slot to write is locked against readers; nothing written yet.
    Locked,
    /// The world's changes are in the slot (entities, components, tables, resources, index).
    Written,
    /// The tick and next id are written.
    Counted,
    /// libhdf5 flushed the slot to the operating system.
    Flushed,
    /// The slot is synced to disk (`Durability::Power` only).
    Synced,
    /// The slot's reader lock is released.
    Unlocked,
    /// The new link exists under its temporary name.
    Linked,
    /// The link names the new slot (committed), not yet synced to disk.
    Renamed,
}

impl Step {
    /// Every step, in protocol order.
    #[cfg(test)]
    pub(crate) const ALL: [Step; 8] = [
        Step::Locked,
        Step::Written,
        Step::Counted,
        Step::Flushed,
        Step::Synced,
        Step::Unlocked,
        Step::Linked,
        Step::Renamed,
    ];
}

/// Stops the protocol at `step` if the seam says so: an error as a crash there would leave
/// things, with nothing after it done.
pub(crate) fn reached(crash_at: Option<Step>, step: Step, path: &Path) -> Result<()> {
    if crash_at == Some(step) {
        return Err(io_err("stop (injected crash) at", path)(
            std::io::Error::other(format!("{step:?}")),
        ));
    }
    Ok(())
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
pub(crate) fn commit(
    path: &Path,
    slot: usize,
    durable: bool,
    crash_at: Option<Step>,
) -> Result<()> {
    let slots = slot_paths(path);
    let target = slots[slot].file_name().unwrap_or_default();
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    symlink(Path::new(target), &tmp).map_err(io_err("create link", &tmp))?;
    reached(crash_at, Step::Linked, path)?;
    std::fs::rename(&tmp, path).map_err(io_err("commit (rename link to)", path))?;
    reached(crash_at, Step::Renamed, path)?;
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
