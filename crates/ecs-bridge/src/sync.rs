//! [`H5Sync`]: the resource that keeps a world and a file in step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy_ecs::lifecycle::RemovedComponents;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use h5pom_store::{ArrayOptions, Concurrency, DeferredArrays, File, Mode, Schema};

use crate::component::{ComponentSync, FlushCx, Skip};
use crate::error::{EcsError, RefTarget, Result};
use crate::history::{History, HistoryRun};
use crate::ids::{DanglingRefs, IdMap, Persist, PersistentId};
use crate::layout::Layout;
use crate::registry::Registry;
use crate::resource::ResourceSync;
use crate::slots::{self, Durability, Step, reached};

/// When the flush system writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushPolicy {
    /// Every tick (the default).
    EveryTick,
    /// Every `n`-th tick (changes in between are merged).
    Every(u32),
    /// Only when [`H5Sync::flush_now`] is called (the system still tracks changes each tick).
    Manual,
}

/// What one flush did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Components written.
    pub components: usize,
    /// Components removed from the file.
    pub removed: usize,
    /// Tables written (in part: only the chunks holding changed rows).
    pub tables: usize,
    /// Chunks of table columns written.
    pub table_chunks: usize,
    /// Resources written or removed.
    pub resources: usize,
    /// Entities deleted from the file (despawned or no longer persisted).
    pub despawned: usize,
    /// Entities persisted for the first time.
    pub spawned: usize,
    /// Bytes of array data written (before compression).
    pub array_bytes: usize,
    /// Bytes of array data stored (after compression).
    pub arrays_stored: u64,
    /// Components not written (a reference to an entity that is not persisted; see
    /// [`H5Sync::skipped`]).
    pub skipped: usize,
    /// A reader held the slot this flush was to write, so the slot was replaced by a copy of
    /// the committed one (the reader keeps its file; the writer does not wait). See
    /// `docs/FORMAT.md`, "Readers while writing".
    pub slot_replaced: bool,
    /// False if nothing was dirty: no HDF5 call was made (the handles a flush needs stay open
    /// between flushes).
    pub wrote: bool,
    /// Wall time of the flush (with [`H5Sync::set_background`]: the time the tick spent in
    /// it, until the arrays were handed to the writer thread).
    pub duration: Duration,
    /// Background flushes: time spent copying the changed arrays out of the world for the
    /// writer thread (zero otherwise).
    pub copy: Duration,
    /// Background flushes: the time from the start of the flush until its tick was committed
    /// (zero for a flush written in the tick).
    pub committed_after: Duration,
}

/// A flush whose arrays a writer thread is writing ([`H5Sync::set_background`]).
struct InFlight {
    /// The target written.
    idx: usize,
    /// The tick it commits.
    tick: u64,
    stats: FlushStats,
    start: Instant,
    /// Bytes stored (after compression) and the batch's buffers, to reuse.
    job: std::thread::JoinHandle<Result<(u64, Vec<Vec<u8>>)>>,
}

type AddedQ =
    SystemState<Query<'static, 'static, (Entity, &'static mut PersistentId), Added<Persist>>>;
type RemovedQ = SystemState<RemovedComponents<'static, 'static, Persist>>;

/// Data written into the file with a flush that is not world state ([`H5Sync::flush_with`]).
pub type ExtraWrite<'a> = dyn Fn(&File) -> h5pom_store::Result<()> + 'a;

/// One file kept in step with the world: the file, and per-type change tracking relative to
/// what that file holds. A crash-safe sync has two (the slots), each tracking its own changes.
struct Target {
    /// The file and its `/ecs` group.
    layout: Layout,
    /// The slot's own path (for errors and the reader lock).
    path: PathBuf,
    comps: Vec<Box<dyn ComponentSync>>,
    res: Vec<Box<dyn ResourceSync>>,
    /// Entities persisted since this file's last flush.
    pending_new: Vec<Entity>,
    /// Persistent ids dropped since this file's last flush.
    pending_gone: Vec<u64>,
    /// A descriptor of the slot file, for the `flock` taken while it is written (slot pairs).
    lock: Option<SlotLock>,
    /// Files this slot replaced while a reader held them ([`Target::claim`]), each with a
    /// descriptor for its lock: kept open until the reader is gone, because libhdf5 writes
    /// when it closes a file (the superblock, and it cuts the file's free tail).
    retired: Vec<(Layout, SlotLock)>,
    /// A flush of this target failed part way: its file is in an unknown state, and the
    /// next flush rebuilds it from the world before writing ([`H5Sync::rebuild`]).
    damaged: bool,
}

/// A descriptor of a slot file that carries its `flock`. Dropping it unlocks explicitly
/// before closing: an `flock` belongs to the open file description, which a child process
/// spawned meanwhile by another thread (between its fork and its exec) shares, so closing only
/// our descriptor could leave the lock held for a moment and make a reader's open fail.
/// Declared after the target's `Layout`, so libhdf5 closes the file while the lock is held.
struct SlotLock(std::fs::File);

impl std::ops::Deref for SlotLock {
    type Target = std::fs::File;
    fn deref(&self) -> &std::fs::File {
        &self.0
    }
}

impl Drop for SlotLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Target {
    /// Tracks `file`, which already holds the ECS layout; writes nothing.
    fn new(layout: Layout, path: PathBuf, registry: &Registry, locked: bool) -> Result<Self> {
        let lock = if locked {
            Some(SlotLock(
                std::fs::File::open(&path).map_err(slots::io_err("open", &path))?,
            ))
        } else {
            None
        };
        let (comps, res) = registry.instantiate();
        Ok(Target {
            layout,
            path,
            comps,
            res,
            pending_new: Vec::new(),
            pending_gone: Vec::new(),
            lock,
            retired: Vec::new(),
            damaged: false,
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // libhdf5 may still write when it closes the file: keep readers out meanwhile. A
        // reader holding the slot is not waited for: the slot was flushed by its last write,
        // and what libhdf5 writes when it closes a flushed file changes nothing a reader reads.
        if let Some(l) = &self.lock {
            let _ = l.try_lock();
        }
        for (_, l) in &self.retired {
            let _ = l.try_lock();
        }
    }
}

impl Target {
    /// Takes the slot's exclusive lock for writing. If a reader holds the slot (a shared
    /// `flock`), the slot is not waited for: a copy of the committed slot `committed` replaces
    /// it under its name (the reader keeps the old file, an unlinked inode, and goes on
    /// reading its tick), and the change tracking is told that its file changed. Returns
    /// whether the slot was replaced.
    fn claim(&mut self, committed: &Path, durable: bool) -> Result<bool> {
        // Close the replaced files whose readers are gone (locked first: see `retired`).
        self.retired.retain(|(_, l)| l.try_lock().is_err());
        let Some(l) = &self.lock else {
            return Ok(false);
        };
        match l.try_lock() {
            Ok(()) => return Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(slots::io_err("lock", &self.path)(e));
            }
        }
        slots::copy_slot(committed, &self.path, durable)?;
        let lock =
            SlotLock(std::fs::File::open(&self.path).map_err(slots::io_err("open", &self.path))?);
        // A new inode that no reader has opened yet (readers open the committed slot).
        lock.lock().map_err(slots::io_err("lock", &self.path))?;
        let file = File::open_unlocked(&self.path, Mode::ReadWrite, Schema::new())?;
        let layout = Layout::open(file)?;
        // The old file stays open, untouched, until its reader is gone.
        let old_layout = std::mem::replace(&mut self.layout, layout);
        if let Some(old_lock) = self.lock.replace(lock) {
            self.retired.push((old_layout, old_lock));
        }
        for c in &mut self.comps {
            c.file_replaced();
        }
        for r in &mut self.res {
            r.file_replaced(&self.layout)?;
        }
        Ok(true)
    }
}

/// Keeps the persisted part of a world in sync with an HDF5 file. Insert it as a resource and
/// run [`flush_system`](crate::flush_system) every tick.
///
/// With [`Durability::Process`] (the default) or [`Durability::Power`], the file is
/// crash-safe: `path` is a link to the last committed of two complete slot files, and a flush
/// writes the other one, then commits (see [`recover`](crate::recover) and
/// `docs/FORMAT.md`, "Durability").
#[derive(Resource)]
pub struct H5Sync {
    targets: Vec<Target>,
    /// The target the next flush writes.
    current: usize,
    /// The target holding the last committed tick.
    committed: usize,
    path: PathBuf,
    durability: Durability,
    pub(crate) ids: IdMap,
    added: Option<AddedQ>,
    removed: Option<RemovedQ>,
    policy: FlushPolicy,
    ticks: u64,
    flushes: u64,
    last: FlushStats,
    /// The message of the last failed flush (cleared by the next successful one).
    last_error: Option<String>,
    /// Flushes that failed in this session.
    failures: u64,
    /// The registered types (to rebuild a target after a failed flush).
    registry: Registry,
    /// Crash tests: stop the commit protocol at this step.
    pub(crate) crash_at: Option<Step>,
    /// History mode ([`H5Sync::keep_history`]).
    history: Option<HistoryRun>,
    /// The file is in memory (no sidecar files).
    in_memory: bool,
    /// What a reference to an entity that is not persisted does.
    dangling: DanglingRefs,
    /// The components the last flush did not write.
    skipped: Vec<EcsError>,
    /// Those of them the flush before had written (not yet taken).
    new_skips: Vec<EcsError>,
    /// (Entity id, component) pairs skipped at the last flush (a warning is logged when one
    /// is first skipped, and an info line when it is written again).
    skipping: std::collections::HashSet<(u64, &'static str)>,
    /// Array encoding and writing on a writer thread, overlapping the next tick.
    background: bool,
    /// History frames and the run file's arrays encoded once (inline flushes).
    share_encoded: bool,
    /// The flush being finished by the writer thread.
    in_flight: Option<InFlight>,
    /// Every flush writes and commits a tick, even with nothing dirty (a shard of a sharded
    /// run: every rank's tick is the run's).
    pub(crate) every_flush_writes: bool,
    /// Counts the collections that found entities persisted for the first time or dropped.
    pub(crate) entity_changes: u64,
    /// Buffers of the last background batch, reused by the next.
    buffers: Vec<Vec<u8>>,
}

impl Drop for H5Sync {
    fn drop(&mut self) {
        // A background flush is finished and committed (its tick was acknowledged as written).
        if let Err(e) = self.wait() {
            log::error!(
                "h5pom: {}: the last background flush failed (the file keeps tick {}): {e}",
                self.path.display(),
                self.flushes
            );
        }
    }
}

/// Removes `path` (a file or a link) if it exists.
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(slots::io_err("remove", path)(e)),
    }
}

impl H5Sync {
    /// Creates (truncates) `path` and syncs into it, crash-safe ([`Durability::Process`]).
    pub fn create(path: impl AsRef<Path>, registry: &Registry) -> Result<Self> {
        Self::create_with(path, registry, Durability::default())
    }

    /// Creates (truncates) `path` and syncs into it with the given durability. For a slot
    /// pair, `path` becomes a link to `<path>.a` or `<path>.b`; an existing file or link at
    /// `path` is replaced.
    pub fn create_with(
        path: impl AsRef<Path>,
        registry: &Registry,
        durability: Durability,
    ) -> Result<Self> {
        registry.validate()?;
        let path = path.as_ref().to_path_buf();
        if durability == Durability::Unprotected {
            if slots::committed_slot(&path).is_some() {
                remove_if_present(&path)?;
            }
            let layout = Layout::create(File::create(&path, Schema::new())?)?;
            let target = Target::new(layout, path.clone(), registry, false)?;
            return Ok(Self::with_targets(
                vec![target],
                0,
                path,
                durability,
                registry,
            ));
        }
        let slot_paths = slots::slot_paths(&path);
        let mut targets = Vec::with_capacity(2);
        for p in &slot_paths {
            let layout = Layout::create(File::open_unlocked(p, Mode::Create, Schema::new())?)?;
            targets.push(Target::new(layout, p.clone(), registry, true)?);
        }
        let power = durability == Durability::Power;
        if power {
            for t in &targets {
                sync_target(t)?;
            }
        }
        slots::commit(&path, 0, power, None)?;
        Ok(Self::with_targets(targets, 0, path, durability, registry))
    }

    /// Rewinds the run at `path` to its stored step `step` and syncs into it from there:
    /// loads the world as of `step` (as [`Registry::load_at`]) into `world`, replaces the run
    /// file with a new one whose tick is the last tick that recorded `step` (or an earlier
    /// one), and syncs into that. [`keep_history`](Self::keep_history) then cuts the history
    /// after that tick, and the next flush writes the whole world and records what follows:
    /// the history reads as if the run had gone on from `step`. This discards every sample
    /// after `step`, and every state after it; it is meant for a run no one else is writing.
    ///
    /// The new file (a new pair) is made beside the run under a temporary name and moved over
    /// the old one file by file, so every name holds a complete file at every instant and a
    /// reader holding an old file keeps it. A crash before the moves leaves the run as it was
    /// (and a stray `.<name>.rewind*`); a crash after them and before the first flush leaves
    /// a run file without entities at the kept tick, its history up to that tick intact:
    /// rewind again.
    pub fn rewind_with(
        world: &mut World,
        path: impl AsRef<Path>,
        registry: &Registry,
        durability: Durability,
        step: i64,
    ) -> Result<(Self, crate::LoadReport)> {
        let path = path.as_ref();
        let keep = crate::history::HistoryReader::open(path)?.last_tick_through(step)?;
        let report = registry.load_at(world, path, step)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let aside = path.with_file_name(format!(".{name}.rewind"));
        {
            let new = Self::create_with(&aside, registry, durability)?;
            for t in &new.targets {
                t.layout.set_counters(keep, 1)?;
                t.layout.file().flush()?;
            }
        }
        let power = durability == Durability::Power;
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).map_err(slots::io_err("move the rewound file to", to))
        };
        if durability == Durability::Unprotected {
            rename(&aside, path)?;
        } else {
            for (from, to) in slots::slot_paths(&aside)
                .iter()
                .zip(slots::slot_paths(path).iter())
                .rev()
            {
                rename(from, to)?;
            }
            slots::commit(path, 0, power, None)?;
            remove_if_present(&aside)?;
        }
        let (mut sync, _) = Self::reopen(path, registry, durability)?;
        sync.flushes = keep;
        Ok((sync, report))
    }

    /// Syncs into an in-memory file (tests, benchmarks).
    pub fn in_memory(registry: &Registry) -> Result<Self> {
        registry.validate()?;
        let file = File::in_memory(Schema::new())?;
        let path = file.path().to_path_buf();
        let target = Target::new(Layout::create(file)?, path.clone(), registry, false)?;
        let mut sync = Self::with_targets(vec![target], 0, path, Durability::Unprotected, registry);
        sync.in_memory = true;
        Ok(sync)
    }

    fn with_targets(
        targets: Vec<Target>,
        committed: usize,
        path: PathBuf,
        durability: Durability,
        registry: &Registry,
    ) -> Self {
        let registry = registry.clone();
        let n = targets.len();
        H5Sync {
            targets,
            current: (committed + 1) % n,
            committed,
            path,
            durability,
            ids: IdMap::new(),
            added: None,
            removed: None,
            policy: FlushPolicy::EveryTick,
            ticks: 0,
            flushes: 0,
            last: FlushStats::default(),
            last_error: None,
            failures: 0,
            registry,
            crash_at: None,
            history: None,
            in_memory: false,
            dangling: DanglingRefs::default(),
            skipped: Vec::new(),
            new_skips: Vec::new(),
            skipping: std::collections::HashSet::new(),
            background: false,
            share_encoded: true,
            in_flight: None,
            every_flush_writes: false,
            entity_changes: 0,
            buffers: Vec::new(),
        }
    }

    /// Opens an existing synced file for writing (after the world was loaded from it): a
    /// slot pair is recovered first ([`recover`](crate::recover)); a plain file becomes a slot
    /// pair unless `durability` is [`Durability::Unprotected`]. Returns the sync and the file
    /// the world must be loaded from.
    pub(crate) fn reopen(
        path: &Path,
        registry: &Registry,
        durability: Durability,
    ) -> Result<(Self, File)> {
        registry.validate()?;
        let path = path.to_path_buf();
        let pair = slots::committed_slot(&path);
        // Nothing is converted or opened for writing before the file proves to be an ECS file
        // (through a pair's link: its committed slot).
        Layout::read_tick(&path)?;
        if durability == Durability::Unprotected {
            // Write in place: the plain file, or a pair's committed slot.
            let target_path = match pair {
                Some(s) => slots::slot_paths(&path)[s].clone(),
                None => path.clone(),
            };
            let file = File::open(&target_path, Schema::new())?;
            let target = Target::new(Layout::open(file.clone())?, target_path, registry, false)?;
            return Ok((
                Self::with_targets(vec![target], 0, path, durability, registry),
                file,
            ));
        }
        let power = durability == Durability::Power;
        let slot_paths = slots::slot_paths(&path);
        let committed = match pair {
            Some(s) => {
                crate::recover(&path)?;
                s
            }
            None => {
                // A plain file (a snapshot, an unprotected file): it becomes slot a, then the
                // link replaces it.
                slots::copy_slot(&path, &slot_paths[0], power)?;
                slots::copy_slot(&slot_paths[0], &slot_paths[1], power)?;
                slots::commit(&path, 0, power, None)?;
                0
            }
        };
        let mut targets = Vec::with_capacity(2);
        for p in &slot_paths {
            let layout = Layout::open(File::open_unlocked(p, Mode::ReadWrite, Schema::new())?)?;
            targets.push(Target::new(layout, p.clone(), registry, true)?);
        }
        let file = targets[committed].layout.file().clone();
        Ok((
            Self::with_targets(targets, committed, path, durability, registry),
            file,
        ))
    }

    /// Sets what a flush does with a reference to an entity that is not persisted or was
    /// despawned (default: [`DanglingRefs::Skip`]).
    pub fn set_dangling_refs(&mut self, policy: DanglingRefs) {
        self.dangling = policy;
    }

    /// Takes the components of the last flush that were not skipped by the flush before (the
    /// newly skipped ones, as [`skipped`](Self::skipped) describes them).
    pub fn take_new_skips(&mut self) -> Vec<EcsError> {
        std::mem::take(&mut self.new_skips)
    }

    /// The components the last flush did not write, each as an [`EcsError::DanglingRef`]
    /// saying which field points at which entity and whether that entity was never
    /// persisted or despawned. They are retried at every flush.
    pub fn skipped(&self) -> &[EcsError] {
        &self.skipped
    }

    /// Keeps the history of every flush from now on (see [`History`] and `docs/FORMAT.md`,
    /// "History"): each flush appends one sample per changed component type and resource to
    /// `/ecs/history`, which for a file on disk lives in the sidecar `<path>.history` (linked
    /// from the run file) and is written once, append-only, whatever the durability. Call it
    /// right after [`create`](Self::create) or [`resume`](Self::resume), with the registry
    /// the sync was made with. Samples a killed writer left past the committed tick are cut
    /// off here.
    pub fn keep_history(&mut self, registry: &Registry, history: History) -> Result<()> {
        self.wait()?;
        let in_file = self
            .in_memory
            .then(|| self.targets[0].layout.file().clone());
        // The history file is opened with HDF5's lock as the run file is: libhdf5 opens it
        // again through the run file's mirrors (with the run file's access properties) when
        // it attaches their dimension scales, and one process cannot hold a file open both
        // ways.
        let locking = self.durability == Durability::Unprotected;
        let mut run = HistoryRun::open(
            &self.path,
            in_file.as_ref(),
            locking,
            self.flushes,
            registry.histories(&history),
            history,
        )?;
        // The history's arrays are compressed like the run's.
        run.file().set_array_options(self.array_options());
        run.sample_every_flush(self.every_flush_writes);
        self.history = Some(run);
        Ok(())
    }

    /// True if the sync keeps history.
    pub fn keeps_history(&self) -> bool {
        self.history.is_some()
    }

    /// Sets when the flush system writes.
    pub fn set_policy(&mut self, policy: FlushPolicy) {
        self.policy = policy;
    }

    /// Background flushes (off by default): a flush does everything that reads the world in
    /// the tick (change detection, group attributes, table chunks, resources), copies the
    /// changed arrays into reused buffers, and hands them to a writer thread that encodes and
    /// writes them while the next tick runs. The tick is committed (the slot's link replaced)
    /// when the writer is done, at the start of the next flush or in [`wait`](Self::wait):
    /// at most one flush is in flight, and a flush waits for the one before
    /// (back-pressure when the disk is slower than the simulation). Crash safety is
    /// unchanged: a killed process leaves the last committed tick. [`flushes`](Self::flushes)
    /// counts committed ticks; a writer's error is returned by the next flush (or `wait`),
    /// which rebuilds the slot as after any failed flush.
    ///
    /// With [history](Self::keep_history), the history's samples are still written in the
    /// tick (a sample counts once its tick is committed, as always); only the run file's
    /// arrays go to the writer. Flushes that write [extra data](Self::flush_with) or write
    /// everything (snapshots) stay in the tick. Turning it off waits for the flush in flight.
    pub fn set_background(&mut self, on: bool) -> Result<()> {
        if !on {
            self.wait()?;
        }
        self.background = on;
        Ok(())
    }

    /// With [history](Self::keep_history), whether an inline flush compresses an array once
    /// for both the history frame and the run file (on by default): the run file's write
    /// takes the frame's encoded chunks, after comparing the bytes with a copy of the
    /// frame's that the flush keeps until it ends (so a flush holds each changed array's
    /// bytes twice meanwhile). Off, each is encoded on its own (the cost of a history writer
    /// that shares nothing; `benches/history_writers.py` shows both). The files are the same
    /// either way.
    pub fn set_share_encoded(&mut self, on: bool) {
        self.share_encoded = on;
    }

    /// The tick a writer thread is finishing (background flushes), not yet committed.
    pub fn in_flight(&self) -> Option<u64> {
        self.in_flight.as_ref().map(|f| f.tick)
    }

    /// True if flushes finish on a writer thread ([`set_background`](Self::set_background)).
    pub fn background(&self) -> bool {
        self.background
    }

    /// Waits for the flush a writer thread is finishing, and commits its tick. Returns its
    /// stats (`None` if no flush was in flight). After it, [`flushes`](Self::flushes) is the
    /// tick of every flush made so far.
    pub fn wait(&mut self) -> Result<Option<FlushStats>> {
        let Some(f) = self.in_flight.take() else {
            return Ok(None);
        };
        let r = f.job.join().unwrap_or_else(|_| {
            Err(EcsError::Io {
                op: "write arrays on the writer thread",
                path: self.targets[f.idx].path.clone(),
                source: std::io::Error::other("the writer thread panicked"),
            })
        });
        let r = r.and_then(|(stored, buffers)| {
            self.buffers = buffers;
            let t = &self.targets[f.idx];
            if let Some(l) = &t.lock {
                l.unlock().map_err(slots::io_err("unlock", &t.path))?;
            }
            if self.targets.len() > 1 {
                slots::commit(
                    &self.path,
                    f.idx,
                    self.durability == Durability::Power,
                    None,
                )?;
                self.committed = f.idx;
                self.current = 1 - f.idx;
            }
            self.flushes = f.tick;
            let mut stats = f.stats;
            stats.arrays_stored = stored;
            stats.committed_after = f.start.elapsed();
            self.last = stats;
            Ok(stats)
        });
        match r {
            Ok(stats) => Ok(Some(stats)),
            Err(e) => {
                self.failed(f.idx, &e);
                Err(e)
            }
        }
    }

    /// Records a failed flush of target `idx`: rebuilt by the next flush.
    fn failed(&mut self, idx: usize, e: &EcsError) {
        // The target may be half written: the next flush rebuilds it.
        self.targets[idx].damaged = true;
        self.failures += 1;
        let message = e.to_string();
        if self.last_error.as_deref() != Some(message.as_str()) {
            log::error!(
                "h5pom: {}: flush failed (the file keeps tick {}; the next flush \
                 rebuilds the slot and retries): {message}",
                self.path.display(),
                self.flushes
            );
        }
        self.last_error = Some(message);
    }

    /// Sets the options (compression, chunking) of array fields that do not set their own,
    /// for every file this sync writes.
    pub fn set_array_options(&mut self, opts: ArrayOptions) {
        for t in &self.targets {
            t.layout.file().set_array_options(opts.clone());
        }
        if let Some(h) = &self.history {
            h.file().set_array_options(opts);
        }
    }

    /// The default options of array fields.
    pub fn array_options(&self) -> ArrayOptions {
        self.targets[0].layout.file().array_options()
    }

    /// Sets where array encoding runs, for every file this sync writes.
    pub fn set_concurrency(&mut self, c: Concurrency) {
        for t in &self.targets {
            t.layout.file().set_concurrency(c.clone());
        }
        if let Some(h) = &self.history {
            h.file().set_concurrency(c);
        }
    }

    /// The file holding the last committed tick (for a slot pair, one of the slots). Read
    /// through it freely; write only through [`flush_with`](Self::flush_with), or the data
    /// is not part of a commit.
    pub fn file(&self) -> &File {
        self.targets[self.committed].layout.file()
    }

    /// The path the sync was created with (for a slot pair, the committing link).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability the sync writes with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Completed flushes (the tick number stored in the file).
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// What the last committed flush did (with background flushes, the one [`wait`]
    /// committed last, with its bytes stored and commit time).
    ///
    /// [`wait`]: Self::wait
    pub fn last_flush(&self) -> FlushStats {
        self.last
    }

    /// Number of persisted entities known to the sync.
    pub fn persisted_entities(&self) -> usize {
        self.ids.len()
    }

    /// The message of the last failed flush, `None` once a flush succeeded again. The
    /// typed error is what [`tick`](Self::tick) or [`flush_now`](Self::flush_now) returned.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Flushes that failed in this session. A failed flush never stops the sync: the file
    /// keeps its last committed tick, and the next flush rebuilds the slot it was writing
    /// from the world (a crash-safe pair), or writes the whole world again (one file), then
    /// commits as usual; persistence resumes by itself once the cause is gone.
    pub fn failed_flushes(&self) -> u64 {
        self.failures
    }

    /// One tick: track changes, and flush if the policy says so.
    pub fn tick(&mut self, world: &mut World) -> Result<()> {
        self.collect(world);
        self.ticks += 1;
        let due = match self.policy {
            FlushPolicy::EveryTick => true,
            FlushPolicy::Every(n) => self.ticks.is_multiple_of(u64::from(n.max(1))),
            FlushPolicy::Manual => false,
        };
        if !due {
            return Ok(());
        }
        self.flush_recorded(world, false, None, false).map(|_| ())
    }

    /// Flushes now, whatever the policy.
    pub fn flush_now(&mut self, world: &mut World) -> Result<FlushStats> {
        self.collect(world);
        self.flush_recorded(world, false, None, false)
    }

    /// Flushes now and, in the same commit, lets `extra` write data that is not world state
    /// (a run log, provenance) into the file. With a slot pair both slots are brought up to
    /// date and given the extra data, so it stays in the file after later flushes; `extra`
    /// must therefore be repeatable (overwrite, not append).
    pub fn flush_with(&mut self, world: &mut World, extra: &ExtraWrite<'_>) -> Result<FlushStats> {
        self.collect(world);
        let start = Instant::now();
        let mut stats = self.flush_recorded(world, false, Some(extra), false)?;
        // The other slot gets the same changes and extra data under the same tick.
        for _ in 1..self.targets.len() {
            self.flush_recorded(world, false, Some(extra), true)?;
        }
        stats.duration = start.elapsed();
        Ok(stats)
    }

    /// Writes every persisted component and resource, changed or not.
    pub(crate) fn flush_all(&mut self, world: &mut World) -> Result<FlushStats> {
        self.collect(world);
        self.flush_recorded(world, true, None, false)
    }

    /// After a load: consume the load's own spawn events, so that nothing is rewritten.
    pub(crate) fn resumed(&mut self, world: &mut World, tick: u64) {
        self.collect(world);
        for t in &mut self.targets {
            t.pending_new.clear();
            t.pending_gone.clear();
            for c in &mut t.comps {
                c.loaded(world);
            }
            for r in &mut t.res {
                r.loaded(world);
            }
        }
        if let Some(h) = &mut self.history {
            h.loaded(world);
        }
        self.flushes = tick;
    }

    /// The registered types.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The next id this sync would hand out.
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.next
    }

    /// A new file that continues a run stored elsewhere: its first flush commits tick
    /// `tick + 1` (before any flush).
    pub(crate) fn continue_from(&mut self, tick: u64) {
        self.flushes = tick;
    }

    /// Ids are handed out from lane `lane` of `lanes` (see [`IdMap::set_lane`]), none below
    /// `floor`.
    pub(crate) fn share_ids(&mut self, lanes: u64, lane: u64, floor: u64) {
        self.ids.set_lane(lanes, lane, floor);
    }

    /// Reads this tick's new persisted entities and removals (no HDF5 call).
    fn collect(&mut self, world: &mut World) {
        let mut new_now = Vec::new();
        let mut gone_now = Vec::new();
        // Removals first: an entity despawned and its id re-spawned in the same tick (a
        // replacing load, a rollback) keeps the id.
        let removed = self.removed.get_or_insert_with(|| SystemState::new(world));
        let gone: Vec<Entity> = match removed.get_mut(world) {
            Ok(mut r) => r.read().collect(),
            Err(_) => Vec::new(),
        };
        for e in gone {
            // Still persisted (re-added since): nothing to drop.
            if world.get::<Persist>(e).is_some() {
                continue;
            }
            if let Some(id) = self.ids.remove_entity(e) {
                gone_now.push(id);
                for t in &mut self.targets {
                    t.pending_gone.push(id);
                }
            }
        }
        let added = self.added.get_or_insert_with(|| SystemState::new(world));
        if let Ok(mut q) = added.get_mut(world) {
            for (e, mut pid) in q.iter_mut() {
                let taken = self.ids.entity(pid.0).is_some_and(|other| other != e);
                if pid.0 == 0 || taken {
                    pid.0 = self.ids.allocate();
                }
                self.ids.insert(e, pid.0);
                new_now.push(e);
                for t in &mut self.targets {
                    t.pending_new.push(e);
                }
            }
        }
        if !new_now.is_empty() || !gone_now.is_empty() {
            self.entity_changes += 1;
        }
        if let Some(h) = &mut self.history {
            h.drain(world, &new_now, &gone_now);
        }
        for t in &mut self.targets {
            for c in &mut t.comps {
                c.drain_removed(world);
            }
            for r in &mut t.res {
                r.init(world);
            }
        }
    }

    /// Flushes into the current target and commits it; records the outcome.
    fn flush_recorded(
        &mut self,
        world: &mut World,
        full: bool,
        extra: Option<&ExtraWrite<'_>>,
        same_tick: bool,
    ) -> Result<FlushStats> {
        // The flush in flight commits first (its error is this flush's).
        self.wait()?;
        let idx = self.current;
        let result = self.flush_target(idx, world, full, extra, same_tick);
        match result {
            Ok(stats) => {
                if self.last_error.take().is_some() {
                    log::info!(
                        "h5pom: {}: flushing again (tick {})",
                        self.path.display(),
                        self.flushes
                    );
                }
                // A background flush's stats become `last` when it commits (`wait`).
                if self.in_flight.is_none() {
                    self.last = stats;
                }
                Ok(stats)
            }
            Err(e) => {
                self.failed(idx, &e);
                Err(e)
            }
        }
    }

    /// Before writing a target whose last flush failed: a slot of a pair is replaced by a new
    /// empty file and fresh change tracking (the next write is whole); a single file keeps its
    /// tracking and is written whole. The history is reopened at the committed tick (samples
    /// of the failed flush cut off) and records its next sample whole.
    fn rebuild(&mut self, idx: usize, world: &mut World) -> Result<()> {
        if self.targets.len() > 1 {
            let path = self.targets[idx].path.clone();
            // A reader may hold the old file: it keeps it (unlinked); no-one else opens it.
            remove_if_present(&path)?;
            let layout = Layout::create(File::open_unlocked(&path, Mode::Create, Schema::new())?)?;
            let mut t = Target::new(layout, path, &self.registry, true)?;
            for c in &mut t.comps {
                c.drain_removed(world);
            }
            for r in &mut t.res {
                r.init(world);
            }
            t.pending_new = self.ids.entities().collect();
            let old = std::mem::replace(&mut self.targets[idx], t);
            drop(old);
        } else {
            let t = &mut self.targets[idx];
            for c in &mut t.comps {
                c.file_replaced();
            }
            let layout = &t.layout;
            for r in &mut t.res {
                r.file_replaced(layout)?;
            }
            t.damaged = false;
        }
        if let Some(run) = self.history.take() {
            let conf = run.into_conf();
            self.keep_history(&self.registry.clone(), conf)?;
            if let Some(h) = &mut self.history {
                h.loaded(world);
            }
        }
        Ok(())
    }

    fn flush_target(
        &mut self,
        idx: usize,
        world: &mut World,
        full: bool,
        extra: Option<&ExtraWrite<'_>>,
        same_tick: bool,
    ) -> Result<FlushStats> {
        let start = Instant::now();
        let mut stats = FlushStats::default();
        self.ids.unmapped_as_none = self.dangling == DanglingRefs::StoreNone;
        let full = if self.targets[idx].damaged {
            self.rebuild(idx, world)?;
            true
        } else {
            full
        };
        let pair = self.targets.len() > 1;
        let durability = self.durability;
        if pair {
            // Readers of a slot hold a shared lock on it while they read: never wait for them.
            let committed = self.targets[self.committed].path.clone();
            let durable = durability == Durability::Power;
            stats.slot_replaced = self.targets[idx].claim(&committed, durable)?;
        }
        let crash_at = self.crash_at;
        // Background: ordinary flushes only (crash tests step through the inline protocol).
        // With history, the history's samples are written in the tick as before (they count
        // once their tick is committed); the run slot's arrays go to the writer thread.
        let background =
            self.background && !full && !same_tick && extra.is_none() && crash_at.is_none();
        let mut pool = std::mem::take(&mut self.buffers);
        let mut owned: Option<DeferredArrays<'static>> = None;
        let ids = &self.ids;
        let history = &mut self.history;
        let next_tick = self.flushes + 1;
        let t = &mut self.targets[idx];
        let gone = std::mem::take(&mut t.pending_gone);
        let new = std::mem::take(&mut t.pending_new);
        reached(crash_at, Step::Locked, &t.path)?;
        // History first: its samples carry the tick this flush commits, and count once the
        // commit below is done (a sample of an uncommitted tick is cut off on resume).
        let mut sampled = false;
        // The history's frames and the run file's arrays are the same bytes, chunked alike:
        // encoded once (inline flushes; a background flush writes copies on another thread).
        let _share = (history.is_some() && !background && self.share_encoded)
            .then(h5pom_store::pipeline::share_encoded_chunks);
        if let Some(h) = history {
            if !same_tick {
                sampled = h.append(world, ids, next_tick)?;
            }
            // The run file's `/ecs/history` mirrors the history file as of this append.
            if let Some(name) = h.link() {
                t.layout.link_history(name, h.root_links(), h.root())?;
            }
        }
        // Entities no longer persisted: drop their groups, and their rows from every table.
        for &id in &gone {
            t.layout.delete_entity(id)?;
            for c in &mut t.comps {
                c.entity_gone(id);
            }
        }
        stats.despawned = gone.len();
        stats.spawned = new.len();
        let skipped = std::cell::RefCell::new(Vec::new());
        let cx = FlushCx {
            layout: &t.layout,
            ids,
            new_entities: &new,
            full,
            skipped: &skipped,
        };
        // Every component type's arrays are collected, then written in one parallel pass.
        let world: &World = world;
        let mut arrays = DeferredArrays::new();
        let mut dirty: Vec<(u64, usize, Entity)> = Vec::new();
        for (i, c) in t.comps.iter_mut().enumerate() {
            let f = c.flush(world, &cx, &mut arrays)?;
            stats.components += f.written;
            stats.removed += f.removed;
            stats.tables += f.tables;
            stats.table_chunks += f.table_chunks;
            dirty.extend(c.take_dirty().into_iter().map(|(id, e)| (id, i, e)));
        }
        // Group-stored components, entity by entity in id order: each entity group is
        // opened once for all its types, and neighbours share a shard.
        dirty.sort_unstable_by_key(|&(id, i, _)| (id, i));
        let mut write = || -> Result<()> {
            for run in dirty.chunk_by(|a, b| a.0 == b.0) {
                let id = run[0].0;
                let g = t.layout.entity(id)?;
                for &(_, i, e) in run {
                    if t.comps[i].write_entity(world, e, id, &g, &cx, &mut arrays)? {
                        stats.components += 1;
                    }
                }
            }
            Ok(())
        };
        let written = write();
        for c in &mut t.comps {
            c.dirty_written();
        }
        written?;
        let skipped: Vec<EcsError> = skipped
            .take()
            .into_iter()
            .map(|s| skip_error(world, s))
            .collect();
        stats.skipped = skipped.len();
        stats.array_bytes = arrays.bytes();
        if !arrays.is_empty() {
            if background {
                let copy = Instant::now();
                owned = Some(arrays.into_owned(&mut pool));
                stats.copy = copy.elapsed();
            } else {
                let w = t.layout.file().write_deferred(arrays)?;
                stats.arrays_stored = w.bytes_stored;
            }
        }
        self.buffers = pool;
        for r in &mut t.res {
            if r.flush(world, &cx)? {
                stats.resources += 1;
            }
        }
        if full || stats.spawned + stats.despawned > 0 {
            t.layout.write_index(&ids.sorted_ids())?;
        }
        if let Some(extra) = extra {
            extra(t.layout.file())?;
        }
        reached(crash_at, Step::Written, &t.path)?;
        stats.wrote = full
            || self.every_flush_writes
            || sampled
            || extra.is_some()
            || stats.components
                + stats.removed
                + stats.tables
                + stats.resources
                + stats.despawned
                + stats.spawned
                > 0;
        if stats.wrote {
            let tick = if same_tick {
                self.flushes
            } else {
                self.flushes + 1
            };
            t.layout.set_counters(tick, ids.next)?;
            reached(crash_at, Step::Counted, &t.path)?;
            if background {
                // The writer thread writes the arrays, flushes (and syncs) the file; the
                // commit follows in `wait`.
                let file = t.layout.file().clone();
                let power = durability == Durability::Power;
                let fd = match (&t.lock, power) {
                    (Some(l), true) => Some(l.try_clone().map_err(slots::io_err("open", &t.path))?),
                    _ => None,
                };
                let path = t.path.clone();
                let arrays = owned.take();
                let job = std::thread::Builder::new()
                    .name("h5pom-flush".into())
                    .spawn(move || -> Result<(u64, Vec<Vec<u8>>)> {
                        let (stored, buffers) = match arrays {
                            Some(a) => {
                                let w = file.write_deferred_ref(&a)?;
                                (w.bytes_stored, a.into_buffers())
                            }
                            None => (0, Vec::new()),
                        };
                        file.flush()?;
                        if let Some(fd) = fd {
                            fd.sync_all().map_err(slots::io_err("sync", &path))?;
                        }
                        Ok((stored, buffers))
                    })
                    .map_err(slots::io_err("start the writer thread for", &t.path))?;
                stats.duration = start.elapsed();
                self.in_flight = Some(InFlight {
                    idx,
                    tick,
                    stats,
                    start,
                    job,
                });
                self.finish_skips(skipped);
                return Ok(stats);
            }
            t.layout.file().flush()?;
            reached(crash_at, Step::Flushed, &t.path)?;
            if pair {
                let power = durability == Durability::Power;
                if power {
                    sync_target(t)?;
                }
                reached(crash_at, Step::Synced, &t.path)?;
                if let Some(l) = &t.lock {
                    l.unlock().map_err(slots::io_err("unlock", &t.path))?;
                }
                reached(crash_at, Step::Unlocked, &t.path)?;
                slots::commit(&self.path, idx, power, crash_at)?;
                self.committed = idx;
                self.current = 1 - idx;
            }
            self.flushes = tick;
        } else if let Some(l) = &t.lock {
            l.unlock().map_err(slots::io_err("unlock", &t.path))?;
        }
        stats.duration = start.elapsed();
        self.finish_skips(skipped);
        Ok(stats)
    }

    /// Records the components a flush skipped (and logs the newly skipped ones).
    fn finish_skips(&mut self, skipped: Vec<EcsError>) {
        let fresh = report_skips(&mut self.skipping, &skipped);
        self.new_skips = skipped
            .iter()
            .zip(fresh)
            .filter(|(_, f)| *f)
            .filter_map(|(e, _)| skip_copy(e))
            .collect();
        self.skipped = skipped;
    }
}

/// The error reported for a component a flush skipped.
fn skip_error(world: &World, s: Skip) -> EcsError {
    match s.error {
        h5pom_store::Error::UnpersistedRef { field, target, .. } => {
            // (Bits that are no entity cannot come from an `Entity` field: a despawned one.)
            let target = Entity::try_from_bits(target).unwrap_or(Entity::PLACEHOLDER);
            EcsError::DanglingRef {
                entity: s.id,
                component: s.component,
                field,
                target,
                state: if world.get_entity(target).is_ok() {
                    RefTarget::NotPersisted
                } else {
                    RefTarget::Despawned
                },
            }
        }
        source => EcsError::Component {
            entity: s.id,
            component: s.component,
            source,
        },
    }
}

/// A copy of a skip error ([`skip_error`] gives only `DanglingRef`s).
fn skip_copy(e: &EcsError) -> Option<EcsError> {
    Some(match e {
        EcsError::DanglingRef {
            entity,
            component,
            field,
            target,
            state,
        } => EcsError::DanglingRef {
            entity: *entity,
            component,
            field: field.clone(),
            target: *target,
            state: *state,
        },
        _ => return None,
    })
}

/// Logs the components newly skipped (a warning each) and those written again (info);
/// returns, per skip of `now`, whether it is new.
fn report_skips(
    known: &mut std::collections::HashSet<(u64, &'static str)>,
    now: &[EcsError],
) -> Vec<bool> {
    let mut current = std::collections::HashSet::with_capacity(now.len());
    let mut fresh = Vec::with_capacity(now.len());
    for e in now {
        let key = match e {
            EcsError::DanglingRef {
                entity, component, ..
            }
            | EcsError::Component {
                entity, component, ..
            } => (*entity, *component),
            _ => {
                fresh.push(false);
                continue;
            }
        };
        let new = !known.contains(&key);
        if new {
            log::warn!("h5pom: {e}");
        }
        fresh.push(new);
        current.insert(key);
    }
    for (entity, component) in known.difference(&current) {
        log::info!("h5pom: entity {entity} (persistent id), component {component}: written again");
    }
    *known = current;
    fresh
}

/// Syncs a slot's data to disk (`fsync`).
fn sync_target(t: &Target) -> Result<()> {
    match &t.lock {
        Some(f) => f.sync_all().map_err(slots::io_err("sync", &t.path)),
        None => Ok(()),
    }
}
