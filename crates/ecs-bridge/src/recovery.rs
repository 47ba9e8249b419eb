//! [`recover`]: making a synced file whose writer died usable again.

use std::path::{Path, PathBuf};

use h5pom_store::File;

use crate::error::Result;
use crate::layout::Layout;
use crate::slots::{committed_slot, copy_slot, slot_paths};

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
/// For a slot pair ([`Durability::Process`](crate::Durability::Process) or
/// [`Power`](crate::Durability::Power)): checks that the committed slot opens and carries a
/// tick, then rebuilds the other slot (which a killed flush may have left half written) as a
/// copy of it. For a plain file: clears libhdf5's "open for write" superblock flags if a
/// killed writer left them ([`File::clear_status_flags`]) and checks that the file opens.
/// Never modifies the committed data. Must not run while a writer still has the file open.
///
/// A sharded (MPI) run's file: every shard is brought to the run's last common tick (its link
/// set to the slot holding it, the other slot rebuilt from it) and the run file written anew
/// at that tick, so that a reader of the run file sees one tick in every shard (see
/// `docs/FORMAT.md`, "Sharded (MPI) runs").
///
/// The command-line equivalent is `h5pom recover <file>`.
pub fn recover(path: impl AsRef<Path>) -> Result<Recovery> {
    let path = path.as_ref();
    if crate::sharded::is_sharded(path) {
        return crate::sharded::recover(path);
    }
    if let Some(slot) = committed_slot(path) {
        let slots = slot_paths(path);
        let tick = Layout::read_tick(&slots[slot])?;
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
    let tick = Layout::read_tick(path)?;
    Ok(Recovery {
        committed: path.to_path_buf(),
        tick,
        slot_pair: false,
        rebuilt: false,
    })
}
