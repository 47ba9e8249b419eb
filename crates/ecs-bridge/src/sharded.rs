//! Sharded runs: one world persisted by many writers (the ranks of an MPI job), one file to
//! read it.
//!
//! Each writer (rank `r` of `N`) syncs its own entities into its own *shard*, an ordinary
//! slot pair written by [`H5Sync`] (parallel encoding, direct chunk writes), at
//! `<run>.g<generation>.r<r>`. Ids never collide without any exchange: writer `r` hands out
//! only ids `r + 1, r + 1 + N, …`. A flush is a *commit across writers*: every writer commits
//! its tick locally, then the writers agree ([`Collective::all_min`]) that all of them did;
//! writer 0 then writes the *run file* (`<run>`, itself a slot pair), which presents the
//! whole world in the ordinary ECS layout through external links (entity groups, resources)
//! and virtual datasets (table columns and the index stacked across shards), and a second
//! agreement ends the flush. No writer starts a new tick before every writer has committed
//! the last one, so each shard's other slot still holds the tick before: a writer killed at
//! any instant leaves every shard able to present the last tick that all committed.
//!
//! `docs/FORMAT.md`, "Sharded (MPI) runs", specifies the files and the commit; the `mpi`
//! feature of the `h5pom` crate implements [`Collective`] for an MPI communicator.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use h5pom_store::reexports::hdf5;
use h5pom_store::{File, Schema, Value, get_attr, set_attr};

use crate::error::{EcsError, Result};
use crate::layout::{ENTITY_COLUMN, Layout, entity_path, h5, shard_name};
use crate::load::{LoadMode, LoadReport};
use crate::registry::Registry;
use crate::slots::{self, Durability, slot_paths};
use crate::sync::{FlushStats, H5Sync};

/// The group of a run file that describes its shards: `/ecs/mpi`.
pub const SHARDS_GROUP: &str = "mpi";
/// `/ecs/mpi@ranks`: how many writers (shards) the run has.
pub const RANKS_ATTR: &str = "ranks";
/// `/ecs/mpi@generation`: the generation of the shard files (a resume starts a new one).
pub const GENERATION_ATTR: &str = "generation";
/// `/ecs/mpi@history-generations` and `@history-ranks`: earlier generations kept for their
/// history (oldest first), and their writer counts.
pub const HISTORY_GENERATIONS_ATTR: &str = "history-generations";
/// See [`HISTORY_GENERATIONS_ATTR`].
pub const HISTORY_RANKS_ATTR: &str = "history-ranks";

/// The history sidecar of a shard (or of any synced file): `<file>.history`.
fn sidecar(p: &Path) -> PathBuf {
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    p.with_file_name(format!("{name}.history"))
}

/// Earlier generations a run file keeps for their history: `(generation, ranks)`, oldest first.
pub(crate) fn past_generations(file: &File) -> Vec<(u64, usize)> {
    let Ok(g) = file.hdf5().group(&format!("/ecs/{SHARDS_GROUP}")) else {
        return Vec::new();
    };
    let read = |name: &str| -> Vec<u64> {
        g.attr(name)
            .and_then(|a| a.read_raw::<u64>())
            .unwrap_or_default()
    };
    let (gens, ranks) = (read(HISTORY_GENERATIONS_ATTR), read(HISTORY_RANKS_ATTR));
    gens.into_iter()
        .zip(ranks)
        .filter(|&(_, n)| n > 0 && n <= 1 << 20)
        .map(|(g, n)| (g, n as usize))
        .collect()
}

/// What the writers of a sharded run need from their communicator: agreements (h5pom's commit
/// uses [`all_min`](Self::all_min); the others serve the application's own totals). The `mpi`
/// feature implements it for an MPI communicator (`MPI_Allreduce`); [`Solo`] is the
/// one-writer case.
pub trait Collective {
    /// This writer's rank, `0 .. size()`.
    fn rank(&self) -> usize;
    /// The number of writers.
    fn size(&self) -> usize;
    /// Replaces each value by its minimum over all writers (every writer calls it, with
    /// slices of the same length).
    fn all_min(&self, values: &mut [u64]);
    /// Replaces each value by its maximum over all writers.
    fn all_max(&self, values: &mut [u64]);
    /// Replaces each value by its sum over all writers (modulo 2^64).
    fn all_sum(&self, values: &mut [u64]);
}

/// A single writer: a sharded run of one shard, no communication.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_min(&self, _: &mut [u64]) {}
    fn all_max(&self, _: &mut [u64]) {}
    fn all_sum(&self, _: &mut [u64]) {}
}

/// The shard file (the link of its slot pair) of writer `rank` in generation `generation` of
/// the run `run`: `<run>.g<generation>.r<rank>`, beside the run file.
pub fn shard_path(run: &Path, generation: u64, rank: usize) -> PathBuf {
    let name = run.file_name().unwrap_or_default().to_string_lossy();
    run.with_file_name(format!("{name}.g{generation}.r{rank}"))
}

/// A file name as the run file records it (relative: found beside the run file).
fn link_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// True if `path` opens as the run file of a sharded run (it has `/ecs/mpi`).
pub fn is_sharded(path: &Path) -> bool {
    File::open_read_only(path, Schema::new())
        .ok()
        .is_some_and(|f| run_info(&f).is_ok_and(|i| i.is_some()))
}

/// The files a shard may be: both slots of its pair, or the file itself when it is an
/// ordinary file (a shard of a sharded snapshot).
fn shard_files(shard: &Path) -> Vec<PathBuf> {
    match std::fs::symlink_metadata(shard) {
        Ok(m) if m.file_type().is_file() => vec![shard.to_path_buf()],
        _ => slot_paths(shard).into(),
    }
}

/// The shards a run file names: `(ranks, generation)`, or `None` for an ordinary file.
pub(crate) fn run_info(file: &File) -> Result<Option<(usize, u64)>> {
    let Ok(g) = file.hdf5().group(&format!("/ecs/{SHARDS_GROUP}")) else {
        return Ok(None);
    };
    let path = format!("/ecs/{SHARDS_GROUP}");
    let read = |name: &str| -> Result<u64> {
        get_attr(&g, &path, name)?
            .and_then(|v| v.as_i128())
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| crate::layout::not_ecs(file, format!("no readable {path}@{name}")))
    };
    let ranks = read(RANKS_ATTR)?;
    let generation = read(GENERATION_ATTR)?;
    if ranks == 0 || ranks > 1 << 20 {
        return Err(crate::layout::not_ecs(
            file,
            format!("{path}@{RANKS_ATTR} = {ranks} is out of range"),
        ));
    }
    Ok(Some((ranks as usize, generation)))
}

/// The shards of a run as of its last common tick.
#[derive(Clone, Debug)]
pub struct Shards {
    /// The last tick every shard committed: the run's tick.
    pub tick: u64,
    /// The generation of the shard files.
    pub generation: u64,
    /// Per writer, the slot file holding `tick`.
    pub files: Vec<PathBuf>,
    /// The run was written by one process without shards (`files` is the run file itself).
    pub plain: bool,
}

impl Shards {
    /// Finds the shards of the run `run` (a sharded run's file, or an ordinary synced file)
    /// and their last common tick: the smallest of the shards' newest committed ticks. Each
    /// shard must hold that tick in one of its two slots (the commit guarantees it).
    pub fn find(run: &Path) -> Result<Self> {
        let file = File::open_read_only(run, Schema::new())?;
        let Some((ranks, generation)) = run_info(&file)? else {
            let tick = Layout::open(file)?.tick()?;
            return Ok(Shards {
                tick,
                generation: 0,
                files: vec![run.to_path_buf()],
                plain: true,
            });
        };
        drop(file);
        let mut ticks: Vec<Vec<(u64, PathBuf)>> = Vec::with_capacity(ranks);
        for r in 0..ranks {
            let shard = shard_path(run, generation, r);
            let found: Vec<(u64, PathBuf)> = shard_files(&shard)
                .into_iter()
                .filter_map(|p| Layout::read_tick(&p).ok().map(|t| (t, p)))
                .collect();
            if found.is_empty() {
                return Err(EcsError::Sharded {
                    path: run.to_path_buf(),
                    reason: format!("shard {} has no readable slot", shard.display()),
                });
            }
            ticks.push(found);
        }
        let tick = ticks
            .iter()
            .map(|f| f.iter().map(|(t, _)| *t).max().unwrap_or(0))
            .min()
            .unwrap_or(0);
        let mut files = Vec::with_capacity(ranks);
        for (r, found) in ticks.into_iter().enumerate() {
            let Some((_, p)) = found.into_iter().find(|(t, _)| *t == tick) else {
                return Err(EcsError::Sharded {
                    path: run.to_path_buf(),
                    reason: format!("shard {r} holds no slot at the common tick {tick}"),
                });
            };
            files.push(p);
        }
        Ok(Shards {
            tick,
            generation,
            files,
            plain: false,
        })
    }
}

/// What a partitioned load gave this reader.
#[derive(Clone, Debug, Default)]
pub struct ShardedLoad {
    /// Entities, components and resources loaded here; `tick` is the run's common tick.
    pub report: LoadReport,
    /// How many shards (writers) the run read has.
    pub writers: usize,
    /// The largest `/ecs@next-id` of the shards (ids below it may be in use anywhere).
    pub next_id: u64,
    /// Entities of the whole run (all readers).
    pub total_entities: usize,
}

/// For each shard file, the ids this reader owns: hierarchy roots (entities without a
/// stored parent) of all shards, sorted by persistent id, are dealt round-robin to the
/// `readers` (root `i` to reader `i % readers`), and every entity goes with its root.
fn partition(
    registry: &Registry,
    files: &[File],
    reader: usize,
    readers: usize,
) -> Result<(Vec<HashSet<u64>>, usize)> {
    let mut per_file = Vec::with_capacity(files.len());
    let mut roots: Vec<u64> = Vec::new();
    for file in files {
        let ids = registry.file_ids(file)?;
        let layout = Layout::open(file.clone())?;
        let mut parent: HashMap<u64, u64> = HashMap::new();
        if let Some(t) = layout.table(crate::CHILD_OF_TAG, false)? {
            let kids = h5pom_store::table::read_keys(file, &t.group, &t.path, ENTITY_COLUMN)?;
            let parents =
                h5pom_store::table::read_keys(file, &t.group, &t.path, crate::hierarchy::PARENT)?;
            parent.extend(kids.into_iter().zip(parents));
        }
        // Each id's root, following stored parents (a cycle, which a hierarchy cannot
        // have, stops after as many steps as there are ids).
        let root_of: Vec<(u64, u64)> = ids
            .iter()
            .map(|&id| {
                let mut r = id;
                for _ in 0..=parent.len() {
                    match parent.get(&r) {
                        Some(&p) if p != r => r = p,
                        _ => break,
                    }
                }
                (id, r)
            })
            .collect();
        roots.extend(root_of.iter().map(|&(_, r)| r));
        per_file.push(root_of);
    }
    roots.sort_unstable();
    roots.dedup();
    let total = per_file.iter().map(Vec::len).sum();
    let owned = per_file
        .into_iter()
        .map(|root_of| {
            root_of
                .into_iter()
                .filter(|&(_, r)| roots.binary_search(&r).is_ok_and(|i| i % readers == reader))
                .map(|(id, _)| id)
                .collect()
        })
        .collect();
    Ok((owned, total))
}

impl Registry {
    /// Loads reader `reader`'s share (of `readers`) of the run `run` at its last common tick:
    /// a sharded run written by any number of writers, or an ordinary synced file. The
    /// entities are divided by hierarchy tree: the roots of all shards, in ascending
    /// persistent id, are dealt round-robin to the readers (root `i` to reader
    /// `i % readers`) and every entity goes with its root, so a reader holds whole trees and
    /// `ChildOf` never crosses readers. Every reader loads the resources (those of shard 0).
    /// Other `Entity` references between trees dealt to different readers load as for a
    /// subset load ([`load_ids`](Self::load_ids)).
    pub fn load_share(
        &self,
        world: &mut World,
        run: impl AsRef<Path>,
        reader: usize,
        readers: usize,
    ) -> Result<ShardedLoad> {
        self.validate()?;
        let run = run.as_ref();
        if readers == 0 || reader >= readers {
            return Err(EcsError::Sharded {
                path: run.to_path_buf(),
                reason: format!("reader {reader} of {readers}"),
            });
        }
        let shards = Shards::find(run)?;
        let files = shards
            .files
            .iter()
            .map(|p| File::open_read_only(p, Schema::new()))
            .collect::<h5pom_store::Result<Vec<File>>>()?;
        let (owned, total) = partition(self, &files, reader, readers)?;
        let mut out = ShardedLoad {
            writers: files.len(),
            total_entities: total,
            ..Default::default()
        };
        for (k, (file, only)) in files.iter().zip(&owned).enumerate() {
            let layout = Layout::open(file.clone())?;
            out.next_id = out.next_id.max(layout.next_id().unwrap_or(1));
            if only.is_empty() && k > 0 {
                continue;
            }
            let (r, _) = self.load_file_with(world, file, LoadMode::Add, Some(only), k == 0)?;
            out.report.entities += r.entities;
            out.report.components += r.components;
            out.report.resources += r.resources;
            out.report.renumbered += r.renumbered;
        }
        out.report.tick = shards.tick;
        Ok(out)
    }

    /// [`load_at`](Self::load_at) of a sharded run: the newest generation whose history has
    /// a sample at or before `step`, every shard of it at `step`, into one world.
    pub(crate) fn load_at_sharded(
        &self,
        world: &mut World,
        run: &Path,
        step: i64,
    ) -> Result<LoadReport> {
        let file = File::open_read_only(run, Schema::new())?;
        let Some(current) = run_info(&file)? else {
            return Err(crate::layout::not_ecs(&file, "not a sharded run"));
        };
        let mut generations = past_generations(&file);
        drop(file);
        generations.push((current.1, current.0));
        for &(g, ranks) in generations.iter().rev() {
            let first = shard_path(run, g, 0);
            let covers = crate::history::HistoryReader::open(&first)
                .and_then(|r| r.sample_at(crate::history::INDEX_TAG, step))
                .is_ok_and(|k| k.is_some());
            if !covers {
                continue;
            }
            let mut report = LoadReport::default();
            for r in 0..ranks {
                let got = self.load_at(world, shard_path(run, g, r), step)?;
                report.entities += got.entities;
                report.components += got.components;
                report.resources = report.resources.max(got.resources);
                report.renumbered += got.renumbered;
                report.tick = report.tick.max(got.tick);
            }
            return Ok(report);
        }
        Err(EcsError::Sharded {
            path: run.to_path_buf(),
            reason: format!("no history sample at or before step {step}"),
        })
    }

    /// [`load`](Self::load) of a sharded run: everything, into one world.
    pub(crate) fn load_sharded(
        &self,
        world: &mut World,
        run: &Path,
        mode: LoadMode,
    ) -> Result<LoadReport> {
        match mode {
            LoadMode::Add => {}
            LoadMode::Replace => crate::load::despawn_persisted(world),
            LoadMode::Renumber => {
                return Err(EcsError::Sharded {
                    path: run.to_path_buf(),
                    reason: "a sharded run loads with LoadMode::Add or Replace".into(),
                });
            }
        }
        self.load_share(world, run, 0, 1).map(|l| l.report)
    }
}

/// What one commit of a sharded run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShardedFlush {
    /// This writer's own flush (its shard).
    pub local: FlushStats,
    /// The tick committed across all writers.
    pub tick: u64,
    /// The longest of the writers' own flushes this tick (the commit waits for it).
    pub slowest: Duration,
    /// Time from the end of this writer's flush to the end of the commit: both agreements,
    /// and on writer 0 the run file.
    pub commit: Duration,
    /// Writer 0: time spent writing the run file (zero elsewhere).
    pub run_file: Duration,
    /// Writer 0: the run file's description of the shards was read again (entities or
    /// table rows changed somewhere).
    pub reread: bool,
}

/// What the run file presents, read from the shards (writer 0).
#[derive(Default)]
struct RunSpec {
    /// Per shard: the ids of its entity groups.
    groups: Vec<Vec<u64>>,
    /// Every persisted id, sorted.
    index: Vec<u64>,
    /// Table tag → column → (type, per shard: shape, if the shard has that column).
    tables: BTreeMap<String, TableSpec>,
    /// Shard 0 has `/ecs/resources`.
    resources: bool,
    /// Root members of shard 0 besides `/ecs` and the H5MD roots (a run log): linked from the
    /// run file.
    extras: Vec<String>,
    /// Shard 0's history sidecar has `/h5md`.
    h5md: bool,
    /// H5MD particle groups and observables of the shards' sidecars: (root, name, shard).
    views: Vec<(&'static str, String, usize)>,
    /// H5MD observables that are a history series: name → (tag, field) (their `value` is a
    /// hard link to `/ecs/history/<tag>/<field>` in the sidecar).
    observed: HashMap<String, (String, String)>,
    /// The shards' `/ecs/history` groups, by tag (shards without history: none).
    history: BTreeMap<String, HistoryGroup>,
    /// The shards' history sidecars (paths).
    side_paths: Vec<PathBuf>,
    next_id: u64,
}

/// A table column's type, and per shard its shape (`None`: the shard has no such column).
type ColumnSpec = (hdf5::Datatype, Vec<Option<Vec<usize>>>);

/// One `/ecs/history/<Tag>` group of the shards' sidecars.
#[derive(Default)]
struct HistoryGroup {
    /// Its datasets: type, and per shard the shape.
    datasets: BTreeMap<String, ColumnSpec>,
    /// Sub-groups (an entity's array series): (name, shard).
    groups: Vec<(String, usize)>,
}

#[derive(Default)]
struct TableSpec {
    /// Rows per shard (its `entity` column).
    rows: Vec<usize>,
    columns: BTreeMap<String, ColumnSpec>,
}

/// Keeps the world's share of one writer in its shard and commits ticks across writers.
pub struct ShardedSync<C: Collective> {
    comm: C,
    sync: H5Sync,
    run: PathBuf,
    generation: u64,
    /// A generation whose files are deleted once this one's first tick is committed:
    /// `(generation, ranks)`.
    retire: Option<(u64, usize)>,
    /// Writer 0: what the run file presents, and its version (one more at each reading).
    spec: Option<RunSpec>,
    spec_version: u64,
    /// Writer 0: the spec version each slot of the run file holds (`None`: unknown).
    slot_version: [Option<u64>; 2],
    /// This shard's shape at the last commit ([`fingerprint`], and the sync's count of entity
    /// set changes).
    print: Option<(u64, u64)>,
    /// The commit failed on some writer: the run keeps its last common tick.
    failed: Option<String>,
    /// Earlier generations kept for their history, oldest first.
    past: Vec<(u64, usize)>,
}

impl<C: Collective> std::fmt::Debug for ShardedSync<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedSync")
            .field("run", &self.run)
            .field("rank", &self.comm.rank())
            .field("ranks", &self.comm.size())
            .field("generation", &self.generation)
            .field("tick", &self.sync.flushes())
            .finish()
    }
}

/// Every writer learns whether all of them succeeded; a writer's own error wins.
fn agree<C: Collective, T>(comm: &C, run: &Path, what: &str, r: Result<T>) -> Result<T> {
    let mut ok = [u64::from(r.is_ok())];
    comm.all_min(&mut ok);
    match r {
        Err(e) => Err(e),
        Ok(_) if ok[0] == 0 => Err(EcsError::Sharded {
            path: run.to_path_buf(),
            reason: format!("{what} failed on another writer"),
        }),
        Ok(v) => Ok(v),
    }
}

/// Removes `path` if it exists.
fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(slots::io_err("remove", path)(e)),
    }
}

/// Writer 0: removes the run file at `run`, its slots and the shards it names.
fn clear_run(run: &Path) -> Result<()> {
    if let Ok(file) = File::open_read_only(run, Schema::new())
        && let Ok(Some((ranks, generation))) = run_info(&file)
    {
        drop(file);
        remove_generation(run, generation, ranks)?;
    }
    remove(run)?;
    for p in slot_paths(run) {
        remove(&p)?;
    }
    Ok(())
}

/// Writer 0 of a sharded snapshot: the run file over the `ranks` snapshot shards, written under
/// a temporary name, synced and renamed over `path`.
fn write_snapshot_run(path: &Path, ranks: usize) -> Result<()> {
    let shards: Vec<PathBuf> = (0..ranks).map(|r| shard_path(path, 0, r)).collect();
    let spec = RunSpec::read(&shards, 1)?;
    let name = link_name(path);
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    write_run_slot(&tmp, &spec, &shards, 1, 0, &[])?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(slots::io_err("sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(slots::io_err("rename to", path))
}

/// Removes the files of one generation's shards.
fn remove_generation(run: &Path, generation: u64, ranks: usize) -> Result<()> {
    for r in 0..ranks {
        let shard = shard_path(run, generation, r);
        for p in slot_paths(&shard) {
            remove(&p)?;
        }
        remove(&shard)?;
    }
    Ok(())
}

impl<C: Collective> ShardedSync<C> {
    /// Starts a new sharded run at `run` (every writer calls it): writer `r` creates its
    /// shard, and writer 0 first removes a run file (and its shards) found at `run`. The run
    /// file appears with the first commit.
    pub fn create(run: impl AsRef<Path>, registry: &Registry, comm: C) -> Result<Self> {
        let run = run.as_ref().to_path_buf();
        let cleared = if comm.rank() == 0 {
            clear_run(&run)
        } else {
            Ok(())
        };
        agree(&comm, &run, "removing the old run", cleared)?;
        let sync = Self::shard(&run, 0, registry, &comm, 1);
        let sync = agree(&comm, &run, "creating the shards", sync)?;
        Ok(ShardedSync {
            comm,
            sync,
            run,
            generation: 0,
            retire: None,
            spec: None,
            spec_version: 0,
            slot_version: [None; 2],
            print: None,
            failed: None,
            past: Vec::new(),
        })
    }

    /// This writer's shard of generation `generation`, handing out ids of its lane from
    /// `floor` on.
    fn shard(
        run: &Path,
        generation: u64,
        registry: &Registry,
        comm: &C,
        floor: u64,
    ) -> Result<H5Sync> {
        let path = shard_path(run, generation, comm.rank());
        let mut sync = H5Sync::create_with(&path, registry, Durability::Process)?;
        sync.every_flush_writes = true;
        sync.share_ids(comm.size() as u64, comm.rank() as u64, floor);
        Ok(sync)
    }

    /// Resumes the run `run` (a sharded run written by any number of writers, or an
    /// ordinary synced file) on this communicator's writers: each loads its share
    /// ([`Registry::load_share`]) at the last common tick into `world`, and syncs from there
    /// into a new generation of shards (one per writer). The old files stay the run until
    /// the new generation's first tick is committed, then writer 0 deletes the old shards.
    pub fn resume(
        world: &mut World,
        run: impl AsRef<Path>,
        registry: &Registry,
        comm: C,
    ) -> Result<(Self, ShardedLoad)> {
        let run = run.as_ref();
        Self::resume_from(world, run, run, registry, comm)
    }

    /// Loads the run or snapshot `from` (sharded, written by any number of writers, or an
    /// ordinary file) on this communicator's writers, each its share at the last common tick,
    /// and syncs into `to`: in place (a new generation, as [`resume`](Self::resume)) when
    /// `to` is `from`, else a new sharded run at `to` (writer 0 first removes a run there)
    /// whose first commit is the tick after `from`'s and writes every entity.
    pub fn resume_from(
        world: &mut World,
        from: impl AsRef<Path>,
        to: impl AsRef<Path>,
        registry: &Registry,
        comm: C,
    ) -> Result<(Self, ShardedLoad)> {
        let (from, run) = (from.as_ref(), to.as_ref().to_path_buf());
        let in_place = match (from.canonicalize(), run.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let info = File::open_read_only(from, Schema::new())
            .map_err(EcsError::from)
            .and_then(|f| Ok((run_info(&f)?, past_generations(&f))));
        let (info, past) = agree(&comm, from, "opening the run", info)?;
        let past = if in_place { past } else { Vec::new() };
        let loaded = registry.load_share(world, from, comm.rank(), comm.size());
        let loaded = agree(&comm, from, "loading the run", loaded)?;
        let (generation, retire) = if in_place {
            (
                info.map_or(0, |(_, g)| g + 1),
                info.map(|(ranks, g)| (g, ranks)),
            )
        } else {
            let cleared = if comm.rank() == 0 {
                clear_run(&run)
            } else {
                Ok(())
            };
            agree(&comm, &run, "removing the old run", cleared)?;
            (0, None)
        };
        let sync = Self::shard(&run, generation, registry, &comm, loaded.next_id).map(|mut s| {
            s.continue_from(loaded.report.tick);
            s
        });
        let sync = agree(&comm, &run, "creating the shards", sync)?;
        Ok((
            ShardedSync {
                comm,
                sync,
                run,
                generation,
                retire,
                spec: None,
                spec_version: 0,
                slot_version: [None; 2],
                print: None,
                failed: None,
                past,
            },
            loaded,
        ))
    }

    /// Snapshots the world of every writer into a new sharded snapshot at `path` (every writer
    /// calls it): writer `r` writes its share as an ordinary snapshot file
    /// `<path>.g0.r<r>` ([`Registry::snapshot_with`], the shard's array options), then writer 0
    /// writes `path`, a run file over them (tick 1), under a temporary name renamed over
    /// `path` once complete. An earlier snapshot at `path` is replaced. It loads like a run
    /// ([`Registry::load`], [`Registry::load_share`], [`resume_from`](Self::resume_from)).
    pub fn snapshot(&mut self, world: &mut World, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let cleared = if rank == 0 { clear_run(path) } else { Ok(()) };
        agree(&self.comm, path, "removing the old snapshot", cleared)?;
        let lane = (size as u64, rank as u64, self.sync.next_id());
        let mine = self.sync.registry().clone().snapshot_in_lane(
            world,
            &shard_path(path, 0, rank),
            self.sync.array_options(),
            Some(lane),
        );
        agree(&self.comm, path, "writing the snapshot shards", mine)?;
        let run = if rank == 0 {
            write_snapshot_run(path, size)
        } else {
            Ok(())
        };
        agree(&self.comm, path, "writing the snapshot's run file", run)
    }

    /// Keeps the history of every flush (every writer calls it, right after
    /// [`create`](Self::create) or a resume): each shard keeps its own history sidecar
    /// (`<shard>.history`, see [`H5Sync::keep_history`]), and the run file links the H5MD view
    /// of every shard (`/h5md` of shard 0, every shard's `/particles/<group>`).
    /// [`Registry::load_at`] reads the run at any step. A resume keeps the generation it
    /// continues (its files are not deleted) so that the steps before it stay readable.
    pub fn keep_history(&mut self, history: crate::History) -> Result<()> {
        let registry = self.sync.registry().clone();
        let r = self.sync.keep_history(&registry, history);
        agree(&self.comm, &self.run, "keeping history", r)?;
        // The generation this run continues stays, for the steps before the resume.
        if let Some(old) = self.retire
            && sidecar(&shard_path(&self.run, old.0, 0)).exists()
            && !self.past.contains(&old)
        {
            self.past.push(old);
        }
        Ok(())
    }

    /// This writer's shard sync (array options, concurrency, statistics).
    pub fn shard_sync(&mut self) -> &mut H5Sync {
        &mut self.sync
    }

    /// The last tick committed across all writers.
    pub fn tick(&self) -> u64 {
        self.sync.flushes()
    }

    /// The communicator.
    pub fn comm(&self) -> &C {
        &self.comm
    }

    /// The run file's path.
    pub fn path(&self) -> &Path {
        &self.run
    }

    /// Flushes this writer's changes into its shard and commits the tick across all writers
    /// (every writer calls it once per tick). Returns only when every writer has committed
    /// the tick and the run file names it. If any writer fails, every writer returns an
    /// error, the run keeps its last common tick, and this sync refuses further flushes
    /// (resume the run to go on).
    pub fn flush(&mut self, world: &mut World) -> Result<ShardedFlush> {
        if let Some(why) = &self.failed {
            return Err(EcsError::Sharded {
                path: self.run.clone(),
                reason: format!("an earlier commit failed ({why}); resume the run"),
            });
        }
        let want = self.sync.flushes() + 1;
        let local = self.sync.flush_now(world);
        let start = Instant::now();
        // The shard's shape: its entity set (persisted or dropped since the last commit) and
        // its tables' shapes.
        let print = match &local {
            Ok(_) => fingerprint(self.sync.file())
                .ok()
                .map(|p| (p, self.sync.entity_changes)),
            Err(_) => None,
        };
        let changed = print.is_none() || self.print != print;
        self.print = print;
        // One agreement: the tick every writer committed, and whether any shard changed
        // shape (then writer 0 reads the run file's description again).
        // (The slowest writer's own flush rides along: the minimum of `MAX - nanoseconds`.)
        let nanos = local.as_ref().map_or(0, |s| {
            u64::try_from(s.duration.as_nanos()).unwrap_or(u64::MAX)
        });
        let mut v = [self.sync.flushes(), u64::from(!changed), u64::MAX - nanos];
        self.comm.all_min(&mut v);
        let (all, any_changed) = (v[0], v[1] == 0);
        let slowest = Duration::from_nanos(u64::MAX - v[2]);
        if all < want {
            let why = match &local {
                Err(e) => e.to_string(),
                Ok(_) => format!("another writer did not commit tick {want}"),
            };
            self.failed = Some(why.clone());
            return Err(local.err().unwrap_or(EcsError::Sharded {
                path: self.run.clone(),
                reason: why,
            }));
        }
        let local = local?;
        let mut out = ShardedFlush {
            local,
            tick: want,
            slowest,
            ..Default::default()
        };
        let written = if self.comm.rank() == 0 {
            let t = Instant::now();
            let r = self.write_run_file(want, any_changed, &mut out.reread);
            out.run_file = t.elapsed();
            r
        } else {
            Ok(())
        };
        if let Err(e) = agree(&self.comm, &self.run, "writing the run file", written) {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        // The generation this one replaced is no longer named by the run file: its files go.
        // A failure to delete them loses nothing and is not the commit's (the other writers
        // returned Ok): it is logged and retried at the next flush.
        if let Some((g, ranks)) = self.retire.take()
            && self.comm.rank() == 0
            && !self.past.contains(&(g, ranks))
            && let Err(e) = remove_generation(&self.run, g, ranks)
        {
            log::warn!(
                "h5pom: {}: could not delete the shards of generation {g} yet: {e}",
                self.run.display()
            );
            self.retire = Some((g, ranks));
        }
        out.commit = start.elapsed();
        Ok(out)
    }

    /// Writer 0, after every writer committed `tick`: brings the run file's uncommitted slot
    /// to `tick` and commits it. A slot that already presents the shards as they are now only
    /// gets its counters (`/ecs@tick`, `@next-id`); otherwise, or if that fails (a reader
    /// holds the slot), it is written anew (a reader keeps the old file).
    fn write_run_file(&mut self, tick: u64, changed: bool, reread: &mut bool) -> Result<()> {
        let ranks = self.comm.size();
        let shards: Vec<PathBuf> = (0..ranks)
            .map(|r| shard_path(&self.run, self.generation, r))
            .collect();
        if changed || self.spec.is_none() {
            *reread = true;
            self.spec = Some(RunSpec::read(&shards, tick)?);
            self.spec_version += 1;
        }
        let Some(spec) = &self.spec else {
            unreachable!("set above")
        };
        let slot = uncommitted_slot(&self.run);
        let path = slot_paths(&self.run)[slot].clone();
        let counters_only = || -> Result<()> {
            let file = File::open_unlocked(&path, h5pom_store::Mode::ReadWrite, Schema::new())?;
            Layout::open(file.clone())?.set_counters(tick, spec.next_id)?;
            file.flush()?;
            Ok(())
        };
        let current = self.slot_version[slot] == Some(self.spec_version);
        let quick = current.then(counters_only);
        if !matches!(quick, Some(Ok(()))) {
            self.slot_version[slot] = None;
            write_run_slot(&path, spec, &shards, tick, self.generation, &self.past)?;
            self.slot_version[slot] = Some(self.spec_version);
        }
        slots::commit(&self.run, slot, false, None)
    }
}

impl RunSpec {
    /// `/ecs/history` of the run file: per component type (and the index), one group whose
    /// `[sample, entity]` datasets hold the shards' side by side (virtual datasets growing
    /// with the sidecars), with `entity` stacked, `step`/`time`/`tick` those of the first
    /// shard that has the group, and the dimension scales `step` and `entity` attached, so
    /// that xarray reads it as one world; an entity's array series (a sub-group) is an
    /// external link. Only types whose sample axes are aligned across shards (the same number
    /// of samples everywhere: sharded shards sample every type at every flush) are stacked.
    /// Resources are mirrored from shard 0.
    fn write_history(&self, ecs: &hdf5::Group, sides: &[String]) -> Result<()> {
        use h5pom_store::mirror::{
            StackPart, attach_scale, map_whole, set_scale, side_by_side, stack,
        };
        let hist = ecs
            .create_group("history")
            .map_err(h5("create group", "/ecs/history"))?;
        for (tag, hg) in &self.history {
            let path = format!("/ecs/history/{tag}");
            let shape = |name: &str| hg.datasets.get(name).map(|(_, s)| s.clone());
            let Some(entity) = shape(ENTITY_COLUMN) else {
                // A resource: shard 0's group, mirrored.
                let side0 = open_shard_file(&self.side_paths[0])?;
                let Ok(src) = side0.hdf5().group(&path) else {
                    continue;
                };
                let dst = hist
                    .create_group(tag)
                    .map_err(h5("create group", path.clone()))?;
                h5pom_store::mirror::Mirror::new(sides[0].clone(), "step")
                    .update(&src, &dst, &path)?;
                continue;
            };
            let steps = shape("step").unwrap_or_default();
            let lens: Vec<usize> = steps.iter().flatten().map(|s| s[0]).collect();
            if lens.is_empty() || lens.iter().any(|&l| l != lens[0]) {
                continue; // sample axes not aligned across shards: not presented
            }
            let samples = lens[0];
            let Some(first) = steps.iter().position(Option::is_some) else {
                continue;
            };
            let g = hist
                .create_group(tag)
                .map_err(h5("create group", path.clone()))?;
            let widths: Vec<usize> = entity
                .iter()
                .map(|s| s.as_ref().map_or(0, |s| s[0]))
                .collect();
            let mut made: Vec<(String, hdf5::Dataset)> = Vec::new();
            for (name, (dtype, shapes)) in &hg.datasets {
                let src_path = format!("{path}/{name}");
                let ds = match name.as_str() {
                    "step" | "time" | "tick" => {
                        map_whole(&g, name, dtype, &[samples], true, &sides[first], &src_path)?
                    }
                    _ if name == ENTITY_COLUMN => {
                        let parts: Vec<StackPart> = (0..sides.len())
                            .map(|r| StackPart {
                                file: if widths[r] > 0 {
                                    sides[r].clone()
                                } else {
                                    String::new()
                                },
                                path: src_path.clone(),
                                shape: vec![widths[r]],
                            })
                            .collect();
                        stack(&g, name, dtype, &parts)?
                    }
                    _ => {
                        let two_d = shapes.iter().flatten().all(|s| s.len() == 2);
                        if !two_d {
                            continue;
                        }
                        let parts: Vec<StackPart> = (0..sides.len())
                            .map(|r| StackPart {
                                file: if shapes[r].is_some() && widths[r] > 0 {
                                    sides[r].clone()
                                } else {
                                    String::new()
                                },
                                path: src_path.clone(),
                                shape: vec![samples, widths[r]],
                            })
                            .collect();
                        if widths.iter().sum::<usize>() == 0 {
                            continue;
                        }
                        side_by_side(&g, name, dtype, samples, &parts)?
                    }
                };
                made.push((name.clone(), ds));
            }
            let find = |n: &str| made.iter().find(|(m, _)| m == n).map(|(_, d)| d.clone());
            if let (Some(step), Some(entity)) = (find("step"), find(ENTITY_COLUMN)) {
                set_scale(&step, "step")?;
                set_scale(&entity, ENTITY_COLUMN)?;
                for (name, ds) in &made {
                    if name == "step" || name == ENTITY_COLUMN {
                        continue;
                    }
                    attach_scale(ds, &step, 0)?;
                    if ds.ndim() == 2 {
                        attach_scale(ds, &entity, 1)?;
                    }
                }
            }
            for (sub, r) in &hg.groups {
                g.link_external(&sides[*r], &format!("{path}/{sub}"), sub)
                    .map_err(h5("create link", format!("{path}/{sub}")))?;
            }
        }
        Ok(())
    }
}

/// The slot of the run file's pair that the next write goes to: the one not committed.
fn uncommitted_slot(run: &Path) -> usize {
    usize::from(slots::committed_slot(run) == Some(0))
}

/// Writes the run file slot `path` anew (a reader of the old file keeps it).
fn write_run_slot(
    path: &Path,
    spec: &RunSpec,
    shards: &[PathBuf],
    tick: u64,
    generation: u64,
    past: &[(u64, usize)],
) -> Result<()> {
    remove(path)?;
    // Without libhdf5's lock, as the shards and their sidecars are opened: attaching scales
    // to the history's virtual datasets makes libhdf5 open the sidecars with this file's
    // access properties, and writer 0 holds its own sidecar open unlocked.
    let file = File::open_unlocked(path, h5pom_store::Mode::Create, Schema::new())?;
    spec.write(&file, shards, tick, generation, past)?;
    file.flush()?;
    Ok(())
}

/// [`recover`](crate::recover) of a sharded run: every shard's link is set to its slot holding
/// the last common tick and its other slot rebuilt as a copy of it (a killed flush may have
/// left it half written, and a writer ahead of the others is brought back to the common
/// tick), then the run file is written anew at that tick. Afterwards a reader of the run file
/// (h5py) sees the same tick in every shard. Must not run while any writer of the run lives.
pub(crate) fn recover(run: &Path) -> Result<crate::Recovery> {
    let found = Shards::find(run)?;
    if found.plain {
        return Err(EcsError::Sharded {
            path: run.to_path_buf(),
            reason: "not a sharded run".into(),
        });
    }
    let links: Vec<PathBuf> = (0..found.files.len())
        .map(|r| shard_path(run, found.generation, r))
        .collect();
    for (link, file) in links.iter().zip(&found.files) {
        let pair = slot_paths(link);
        let idx = usize::from(pair[1] == *file);
        if slots::committed_slot(link) != Some(idx) {
            slots::commit(link, idx, true, None)?;
        }
        slots::copy_slot(&pair[idx], &pair[1 - idx], true)?;
    }
    let spec = RunSpec::read(&links, found.tick)?;
    let past = File::open_read_only(run, Schema::new())
        .map(|f| past_generations(&f))
        .unwrap_or_default();
    let slot = uncommitted_slot(run);
    let path = slot_paths(run)[slot].clone();
    write_run_slot(&path, &spec, &links, found.tick, found.generation, &past)?;
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(slots::io_err("sync", &path))?;
    slots::commit(run, slot, true, None)?;
    Ok(crate::Recovery {
        committed: path,
        tick: found.tick,
        slot_pair: true,
        rebuilt: true,
    })
}

/// A cheap summary of a shard's shape: its table columns and their shapes.
fn fingerprint(file: &File) -> Result<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Ok(tables) = file.hdf5().group("/ecs/tables") {
        let bad = |e: hdf5::Error| crate::layout::not_ecs(file, e.to_string());
        for tag in tables.member_names().map_err(bad)? {
            let g = tables.group(&tag).map_err(bad)?;
            for col in g.member_names().map_err(bad)? {
                (&tag, &col).hash(&mut h);
                if let Ok(ds) = g.dataset(&col) {
                    ds.shape().hash(&mut h);
                }
            }
        }
    }
    Ok(h.finish())
}

/// Opens a shard's file (or sidecar) read-only as its writer opens it, without libhdf5's file
/// lock: writer 0 reads the shards while no writer writes (between the two agreements), and
/// one process (writer 0's own shard, or writers that are threads) cannot open a file both
/// with and without the lock.
fn open_shard_file(p: &Path) -> Result<File> {
    Ok(File::open_unlocked(
        p,
        h5pom_store::Mode::Read,
        Schema::new(),
    )?)
}

fn shard_tick(p: &Path) -> Result<u64> {
    Layout::open(open_shard_file(p)?)?.tick()
}

impl RunSpec {
    /// Reads what the run file must present from each shard's slot holding `tick`.
    fn read(shards: &[PathBuf], tick: u64) -> Result<Self> {
        let mut spec = RunSpec::default();
        let n = shards.len();
        for (r, shard) in shards.iter().enumerate() {
            let slot = shard_files(shard)
                .into_iter()
                .find(|p| shard_tick(p).is_ok_and(|t| t == tick))
                .ok_or_else(|| EcsError::Sharded {
                    path: shard.clone(),
                    reason: format!("no slot holds the committed tick {tick}"),
                })?;
            let file = open_shard_file(&slot)?;
            let layout = Layout::open(file.clone())?;
            spec.next_id = spec.next_id.max(layout.next_id().unwrap_or(1));
            let mut groups = layout.entity_ids()?;
            groups.sort_unstable();
            spec.index.extend(layout.read_index()?.unwrap_or_default());
            spec.index.extend(&groups);
            spec.groups.push(groups);
            let bad = |e: hdf5::Error| crate::layout::not_ecs(&file, e.to_string());
            if let Ok(tables) = file.hdf5().group("/ecs/tables") {
                for tag in tables.member_names().map_err(bad)? {
                    let g = tables.group(&tag).map_err(bad)?;
                    let t = spec.tables.entry(tag.clone()).or_default();
                    t.rows.resize(n, 0);
                    for col in g.member_names().map_err(bad)? {
                        let Ok(ds) = g.dataset(&col) else { continue };
                        let shape = ds.shape();
                        if col == ENTITY_COLUMN {
                            t.rows[r] = shape.first().copied().unwrap_or(0);
                            spec.index.extend(h5pom_store::table::read_keys(
                                &file,
                                &g,
                                &tag,
                                ENTITY_COLUMN,
                            )?);
                        }
                        let dtype = ds.dtype().map_err(bad)?;
                        let c = t
                            .columns
                            .entry(col)
                            .or_insert_with(|| (dtype, vec![None; n]));
                        c.1[r] = Some(shape);
                    }
                }
            }
            if r == 0 {
                spec.resources = file.hdf5().link_exists("/ecs/resources");
                spec.extras = file
                    .hdf5()
                    .member_names()
                    .map_err(bad)?
                    .into_iter()
                    .filter(|m| !["ecs", "h5md", "particles", "observables"].contains(&&**m))
                    .collect();
            }
            // The shard's history sidecar: its H5MD view (written by the shard's writer, which
            // waits for this commit to end: nothing is appended while it is read).
            let side = sidecar(shard);
            spec.side_paths.push(side.clone());
            if side.exists() {
                let side_file = open_shard_file(&side)?;
                let h = side_file.hdf5();
                if r == 0 {
                    spec.h5md = h.link_exists("h5md");
                }
                for root in ["particles", "observables"] {
                    if let Ok(g) = h.group(root) {
                        for name in g.member_names().map_err(bad)? {
                            spec.views.push((root, name, r));
                        }
                    }
                }
                // The history groups, and which series each observable is (its `value` is
                // the same object: same token).
                let mut series = Vec::new();
                if let Ok(root) = h.group("ecs/history") {
                    for tag in root.member_names().map_err(bad)? {
                        let Ok(g) = root.group(&tag) else { continue };
                        let hg = spec.history.entry(tag.clone()).or_default();
                        for m in g.member_names().map_err(bad)? {
                            if let Ok(ds) = g.dataset(&m) {
                                if let Ok(info) = g.loc_info_by_name(&m) {
                                    series.push((info.token, (tag.clone(), m.clone())));
                                }
                                let dtype = ds.dtype().map_err(bad)?;
                                let c = hg
                                    .datasets
                                    .entry(m)
                                    .or_insert_with(|| (dtype, vec![None; n]));
                                c.1[r] = Some(ds.shape());
                            } else {
                                hg.groups.push((m, r));
                            }
                        }
                    }
                }
                if let Ok(obs) = h.group("observables") {
                    for name in obs.member_names().map_err(bad)? {
                        if let Ok(info) = obs.loc_info_by_name(&format!("{name}/value"))
                            && let Some((_, ts)) = series.iter().find(|(t, _)| *t == info.token)
                        {
                            spec.observed.insert(name, ts.clone());
                        }
                    }
                }
            }
        }
        spec.index.sort_unstable();
        spec.index.dedup();
        Ok(spec)
    }

    /// Writes the run file: the ECS layout of one world, through links into the shards.
    fn write(
        &self,
        file: &File,
        shards: &[PathBuf],
        tick: u64,
        generation: u64,
        past: &[(u64, usize)],
    ) -> Result<()> {
        let layout = Layout::create(file.clone())?;
        layout.set_counters(tick, self.next_id)?;
        layout.write_index(&self.index)?;
        let root = file.hdf5().group("/").map_err(h5("open group", "/"))?;
        let ecs = root.group("ecs").map_err(h5("open group", "/ecs"))?;
        let names: Vec<String> = shards.iter().map(|s| link_name(s)).collect();
        let info = ecs
            .create_group(SHARDS_GROUP)
            .map_err(h5("create group", "/ecs/mpi"))?;
        let info_path = format!("/ecs/{SHARDS_GROUP}");
        set_attr(
            &info,
            &info_path,
            RANKS_ATTR,
            &Value::U64(shards.len() as u64),
        )?;
        set_attr(&info, &info_path, GENERATION_ATTR, &Value::U64(generation))?;
        if !past.is_empty() {
            let gens: Vec<u64> = past.iter().map(|p| p.0).collect();
            let ranks: Vec<u64> = past.iter().map(|p| p.1 as u64).collect();
            for (name, v) in [
                (HISTORY_GENERATIONS_ATTR, gens),
                (HISTORY_RANKS_ATTR, ranks),
            ] {
                info.new_attr::<u64>()
                    .shape(v.len())
                    .create(name)
                    .and_then(|a| a.write_raw(&v))
                    .map_err(h5("write attribute", format!("{info_path}@{name}")))?;
            }
        }
        for (r, name) in names.iter().enumerate() {
            info.link_external(name, "/", &r.to_string())
                .map_err(h5("create link", format!("{info_path}/{r}")))?;
        }
        // Entity groups: one external link each, in its shard group.
        let mut shard_groups: HashMap<String, hdf5::Group> = HashMap::new();
        if self.groups.iter().any(|g| !g.is_empty()) {
            let entities = ecs
                .create_group("entities")
                .map_err(h5("create group", "/ecs/entities"))?;
            for (r, ids) in self.groups.iter().enumerate() {
                for &id in ids {
                    let sname = shard_name(id);
                    let g = match shard_groups.get(&sname) {
                        Some(g) => g.clone(),
                        None => {
                            let g = entities
                                .create_group(&sname)
                                .map_err(h5("create group", sname.clone()))?;
                            shard_groups.insert(sname.clone(), g.clone());
                            g
                        }
                    };
                    let target = entity_path(id);
                    g.link_external(&names[r], &target, &id.to_string())
                        .map_err(h5("create link", target.clone()))?;
                }
            }
        }
        // Tables: each column stacked across the shards, in shard order.
        if !self.tables.is_empty() {
            let tables = ecs
                .create_group("tables")
                .map_err(h5("create group", "/ecs/tables"))?;
            for (tag, t) in &self.tables {
                let tpath = format!("/ecs/tables/{tag}");
                let g = tables
                    .create_group(tag)
                    .map_err(h5("create group", tpath.clone()))?;
                set_attr(&g, &tpath, h5pom_store::TAG_ATTR, &Value::Str(tag.clone()))?;
                for (col, (dtype, shapes)) in &t.columns {
                    let tail: Vec<usize> = shapes
                        .iter()
                        .flatten()
                        .next()
                        .map(|s| s.iter().skip(1).copied().collect())
                        .unwrap_or_default();
                    let parts: Vec<h5pom_store::mirror::StackPart> = shapes
                        .iter()
                        .enumerate()
                        .map(|(r, s)| match s {
                            Some(shape) => h5pom_store::mirror::StackPart {
                                file: names[r].clone(),
                                path: format!("{tpath}/{col}"),
                                shape: shape.clone(),
                            },
                            None => h5pom_store::mirror::StackPart {
                                file: String::new(),
                                path: String::new(),
                                shape: std::iter::once(t.rows.get(r).copied().unwrap_or(0))
                                    .chain(tail.iter().copied())
                                    .collect(),
                            },
                        })
                        .collect();
                    h5pom_store::mirror::stack(&g, col, dtype, &parts)?;
                }
            }
        }
        if self.resources {
            ecs.link_external(&names[0], "/ecs/resources", "resources")
                .map_err(h5("create link", "/ecs/resources"))?;
        }
        // The H5MD view: shard 0's `/h5md`, every shard's particle groups (a name taken by an
        // earlier shard gets `-r<R>`), and observables likewise.
        let sides: Vec<String> = shards.iter().map(|s| link_name(&sidecar(s))).collect();
        if self.h5md {
            root.link_external(&sides[0], "/h5md", "h5md")
                .map_err(h5("create link", "/h5md"))?;
        }
        if !self.history.is_empty() {
            self.write_history(&ecs, &sides)?;
        }
        let mut roots: HashMap<&str, hdf5::Group> = HashMap::new();
        for (kind, name, r) in &self.views {
            let g = match roots.get(kind) {
                Some(g) => g.clone(),
                None => {
                    let g = root
                        .create_group(kind)
                        .map_err(h5("create group", format!("/{kind}")))?;
                    roots.insert(kind, g.clone());
                    g
                }
            };
            // An observable that is a history series presented whole in the run file: its
            // datasets are hard links to that series (once, for every shard).
            if *kind == "observables"
                && let Some((tag, field)) = self.observed.get(name)
                && ecs.link_exists(&format!("history/{tag}/{field}"))
            {
                if g.link_exists(name) {
                    continue;
                }
                let opath = format!("/observables/{name}");
                let o = g
                    .create_group(name)
                    .map_err(h5("create group", opath.clone()))?;
                for (link, target) in [("step", "step"), ("time", "time"), ("value", field)] {
                    o.link_hard(&format!("/ecs/history/{tag}/{target}"), link)
                        .map_err(h5("create link", format!("{opath}/{link}")))?;
                }
                continue;
            }
            let here = if g.link_exists(name) {
                format!("{name}-r{r}")
            } else {
                name.clone()
            };
            g.link_external(&sides[*r], &format!("/{kind}/{name}"), &here)
                .map_err(h5("create link", format!("/{kind}/{here}")))?;
        }
        for extra in &self.extras {
            let target = format!("/{extra}");
            root.link_external(&names[0], &target, extra)
                .map_err(h5("create link", target.clone()))?;
        }
        Ok(())
    }
}
