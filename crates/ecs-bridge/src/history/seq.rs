//! The history's write sequence: how a reader of the history sidecar knows that no append ran
//! while it read (a sequence lock over files; see `docs/FORMAT.md`, "Reading a history while
//! it is written").
//!
//! The writer keeps `<run>.history.seq` beside the sidecar: 20 decimal digits and a newline,
//! overwritten in place. It makes the number odd before it touches the sidecar and even again
//! once libhdf5 has flushed it, so the sidecar on disk is one consistent HDF5 file whenever the
//! number is even. The writer also holds an exclusive `flock` on the sequence file for as long
//! as it runs: an odd number that no writer holds was left by a killed writer, and the sidecar
//! it left is readable (a sample past the committed tick is ignored by the commit rule).
//!
//! A reader reads the number, reads the history, reads the number again, and keeps what it
//! read if the two are equal and either even or not held by a live writer; otherwise it
//! retries. The writer never waits for readers. This module is file-system only.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::slots::io_err;

/// The sequence file of the history sidecar `history` (`<run>.history.seq`).
pub fn seq_path(history: &Path) -> PathBuf {
    let name = history.file_name().unwrap_or_default().to_string_lossy();
    history.with_file_name(format!("{name}.seq"))
}

/// The writer's side: the open, locked sequence file and its current number.
pub(crate) struct SeqWriter {
    file: std::fs::File,
    path: PathBuf,
    n: u64,
}

impl SeqWriter {
    /// Opens (or creates) the sequence file of the sidecar `history` and locks it. A number
    /// left odd by a killed writer stays odd until the first [`begin`](Self::begin).
    pub(crate) fn open(history: &Path) -> Result<Self> {
        let path = seq_path(history);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io_err("lock (another writer has this history)", &path)(
                    std::io::Error::from(std::io::ErrorKind::WouldBlock),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(io_err("read", &path))?;
        let n = text.trim().parse().unwrap_or(0);
        Ok(SeqWriter { file, path, n })
    }

    fn store(&mut self, n: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        self.file
            .write_all_at(format!("{n:020}\n").as_bytes(), 0)
            .map_err(io_err("write", &self.path))?;
        self.n = n;
        Ok(())
    }

    /// Before the sidecar is modified: the number becomes odd.
    pub(crate) fn begin(&mut self) -> Result<()> {
        if self.n % 2 == 1 {
            return Ok(());
        }
        self.store(self.n + 1)
    }

    /// After the sidecar was flushed: the number becomes even.
    pub(crate) fn end(&mut self) -> Result<()> {
        if self.n.is_multiple_of(2) {
            return Ok(());
        }
        self.store(self.n + 1)
    }
}

/// A reading of the sequence file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeqMark {
    n: u64,
    /// A live writer holds the file.
    live: bool,
}

/// Reads the sequence number of the sidecar `history` (`None` if there is no sequence file:
/// a history written before the file existed, or kept in the run file itself).
pub(crate) fn read_seq(history: &Path) -> Result<Option<SeqMark>> {
    let path = seq_path(history);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(io_err("read", &path))?;
    let n = text.trim().parse().unwrap_or(1);
    let live = n % 2 == 1
        && match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        };
    Ok(Some(SeqMark { n, live }))
}

impl SeqMark {
    /// What was read between `self` and `after` is one consistent state of the sidecar.
    pub(crate) fn consistent_with(self, after: SeqMark) -> bool {
        self.n == after.n && !self.live && !after.live
    }
}
