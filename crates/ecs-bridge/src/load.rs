//! Reloading a file into a world, snapshots, and resuming a synced file.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bevy_ecs::prelude::*;
use h5pom_store::{File, Schema};

use crate::component::LoadCx;
use crate::error::{EcsError, Result};
use crate::ids::{IdMap, Persist, PersistentId};
use crate::layout::Layout;
use crate::registry::Registry;
use crate::sync::H5Sync;

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Entities spawned.
    pub entities: usize,
    /// Components inserted.
    pub components: usize,
    /// Resources inserted.
    pub resources: usize,
    /// The file's tick (completed flushes) when it was read.
    pub tick: u64,
    /// Entities whose stored id was taken in the world already and got a new one.
    pub renumbered: usize,
}

/// How a load treats the persisted entities already in the world.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadMode {
    /// Spawn the file's entities alongside the world's. If a stored persistent id is already
    /// used by a persisted entity of the world, nothing is loaded and the load fails with
    /// [`EcsError::AlreadyLoaded`]: loading a file twice is an error, never a silent copy.
    #[default]
    Add,
    /// Despawn every persisted entity of the world first (with their `Children`), then load:
    /// the world's persisted part becomes the file's. Entities keep their persistent ids
    /// (new `Entity` handles). The file's resources replace the world's.
    Replace,
    /// Spawn alongside, giving each stored id already in use a new one (the file's own
    /// references follow): loading a file twice gives two copies.
    Renumber,
}

use crate::layout::not_ecs;

/// Entities spawned for the ids of a file.
pub(crate) struct Spawned {
    /// Persistent ids in the file → the new entities.
    pub(crate) by_file: IdMap,
    /// The ids the world uses from now on, if some had to be renumbered.
    live: Option<IdMap>,
    next: u64,
    pub(crate) entities: usize,
    pub(crate) renumbered: usize,
}

impl Spawned {
    /// The id map the world uses from now on.
    pub(crate) fn into_live(self) -> IdMap {
        let mut live = self.live.unwrap_or(self.by_file);
        live.next = live.next.max(self.next);
        live
    }
}

/// Sorts `ids` and removes repeats. Ids are mostly dense (handed out from 1): then one pass
/// over a bitmap instead of a sort (a reload lists every id once per table it has a row in).
fn sort_unique(ids: &mut Vec<u64>) {
    let max = ids.iter().copied().max().unwrap_or(0);
    let dense = usize::try_from(max)
        .ok()
        .filter(|&m| m <= ids.len().saturating_mul(4).saturating_add(1024));
    match dense {
        Some(m) => {
            let mut seen = vec![false; m + 1];
            for &id in ids.iter() {
                seen[id as usize] = true;
            }
            ids.clear();
            ids.extend(
                seen.iter()
                    .enumerate()
                    .filter(|(_, s)| **s)
                    .map(|(i, _)| i as u64),
            );
        }
        None => {
            ids.sort_unstable();
            ids.dedup();
        }
    }
}

/// Spawns one entity (with [`Persist`] and its [`PersistentId`]) per id of `ids` (any order,
/// repeats allowed); an id already used in the world gets a new one. An id of `keep` (a
/// subset's replacing load) is loaded into the world's entity that has it.
pub(crate) fn spawn_persisted(
    world: &mut World,
    file: &File,
    mut ids: Vec<u64>,
    next_id: Option<u64>,
    mode: LoadMode,
    keep: &HashMap<u64, Entity>,
) -> Result<Spawned> {
    sort_unique(&mut ids);
    if ids.first() == Some(&0) {
        return Err(not_ecs(file, "entity id 0 is reserved"));
    }
    if mode == LoadMode::Replace {
        despawn_persisted(world);
    }
    // Ids already used in the world (loading alongside existing entities).
    let mut used: HashSet<u64> = world
        .query_filtered::<&PersistentId, With<Persist>>()
        .iter(world)
        .map(|p| p.0)
        .filter(|id| !keep.contains_key(id))
        .collect();
    // Ids come from the file: the largest must leave room for the next one (no overflow).
    let exhausted = || {
        not_ecs(
            file,
            "persistent ids exhausted (an id or next-id is u64::MAX)",
        )
    };
    if mode == LoadMode::Add {
        let taken: Vec<u64> = ids.iter().copied().filter(|id| used.contains(id)).collect();
        if let Some(&first) = taken.first() {
            return Err(EcsError::AlreadyLoaded {
                path: file.path().to_path_buf(),
                taken: taken.len(),
                first,
            });
        }
    }
    let mut next = used
        .iter()
        .chain(ids.last())
        .max()
        .copied()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(exhausted)?;
    next = next.max(next_id.unwrap_or(1));
    let mut renumbered = 0;
    let live_ids: Vec<u64> = if used.is_empty() {
        // Nothing persisted in the world: the (unique) stored ids are kept as they are.
        ids.clone()
    } else {
        ids.iter()
            .map(|&id| {
                if used.insert(id) {
                    Ok(id)
                } else {
                    renumbered += 1;
                    let id = next;
                    next = next.checked_add(1).ok_or_else(exhausted)?;
                    Ok(id)
                }
            })
            .collect::<Result<_>>()?
    };
    if next == u64::MAX {
        return Err(exhausted());
    }
    let mut spawned = world
        .spawn_batch(
            ids.iter()
                .zip(&live_ids)
                .filter(|(fid, _)| !keep.contains_key(fid))
                .map(|(_, &id)| (Persist, PersistentId(id))),
        )
        .collect::<Vec<Entity>>()
        .into_iter();
    let entities: Vec<Entity> = ids
        .iter()
        .filter_map(|fid| keep.get(fid).copied().or_else(|| spawned.next()))
        .collect();
    let mut by_file = IdMap::with_capacity(ids.len());
    for (&fid, &e) in ids.iter().zip(&entities) {
        by_file.insert(e, fid);
    }
    let live = (renumbered > 0).then(|| {
        let mut live = IdMap::with_capacity(ids.len());
        for (&lid, &e) in live_ids.iter().zip(&entities) {
            live.insert(e, lid);
        }
        live
    });
    Ok(Spawned {
        by_file,
        live,
        next,
        entities: entities.len(),
        renumbered,
    })
}

/// Despawns every persisted entity of `world` (with their `Children`): a replacing load.
pub(crate) fn despawn_persisted(world: &mut World) {
    let persisted: Vec<Entity> = world
        .query_filtered::<Entity, With<Persist>>()
        .iter(world)
        .collect();
    for e in persisted {
        // (A child despawned with its parent is gone already.)
        if let Ok(e) = world.get_entity_mut(e) {
            e.despawn();
        }
    }
}

/// The ids of `group_ids`, of `/ecs/index` and of the registered tables' `entity` columns
/// (unsorted, with repeats).
fn collect_ids(
    file: &File,
    layout: &Layout,
    comps: &[Box<dyn crate::component::ComponentSync>],
    group_ids: Vec<u64>,
) -> Result<Vec<u64>> {
    let mut ids = group_ids;
    // Ids from several sources, each bounded by `MAX_ROWS`: their sum is allocated
    // fallibly too.
    let mut add = |more: Vec<u64>| {
        ids.try_reserve(more.len())
            .map_err(|_| not_ecs(file, "the entity ids do not fit in memory"))?;
        ids.extend(more);
        Ok::<_, EcsError>(())
    };
    if let Some(index) = layout.read_index()? {
        add(index)?;
    }
    for c in comps {
        add(c.table_ids(layout)?)?;
    }
    Ok(ids)
}

impl Registry {
    /// Loads the persisted world in `path` into `world`: spawns its entities (with [`Persist`]
    /// and their [`PersistentId`]), inserts their components with every `Entity` reference and
    /// the hierarchy remapped to the new entities, and inserts the resources. Works on an empty
    /// world or alongside existing entities (a stored id already in use gets a new one).
    ///
    /// Alongside existing entities it is [`LoadMode::Add`]: a stored id already used in the
    /// world refuses the load ([`EcsError::AlreadyLoaded`]); see [`load_with`](Self::load_with)
    /// for replacing and renumbering loads. When it returns, the hierarchy is complete
    /// (parents have their `Children`).
    pub fn load(&self, world: &mut World, path: impl AsRef<Path>) -> Result<LoadReport> {
        self.load_with(world, path, LoadMode::Add)
    }

    /// [`load`](Self::load) with an explicit [`LoadMode`].
    pub fn load_with(
        &self,
        world: &mut World,
        path: impl AsRef<Path>,
        mode: LoadMode,
    ) -> Result<LoadReport> {
        self.validate()?;
        let file = File::open_read_only(path.as_ref(), Schema::new())?;
        if crate::sharded::run_info(&file)?.is_some() {
            drop(file);
            return self.load_sharded(world, path.as_ref(), mode);
        }
        self.load_file(world, &file, mode, None)
            .map(|(report, _)| report)
    }

    /// Loads only the entities of `path` whose persistent ids are in `ids` (one entity, or a
    /// filtered subset), without reading the rest: the groups of other entities are not
    /// opened, and a column table reads only the runs of rows that hold these ids. Resources
    /// are not loaded. Every id must be in the file ([`EcsError::NotInFile`] otherwise, and
    /// nothing is loaded).
    ///
    /// A reference to an entity outside the subset resolves to the world's persisted entity
    /// with that persistent id if there is one (loaded before, e.g. by another subset load);
    /// otherwise an optional reference (`Option<Entity>`) loads as `None`, a parent leaves the
    /// entity a root, and a required one (`Entity`, `Vec<Entity>`, …) fails the load with
    /// [`EcsError::Component`]: include its target in `ids`.
    ///
    /// `mode` as for [`load_with`](Self::load_with), except that [`LoadMode::Replace`]
    /// replaces only the world's entities that have these ids, in place: each keeps its
    /// `Entity` (references to it and its children stay valid), its registered components
    /// are removed and loaded from the file; every other entity is left alone.
    pub fn load_ids(
        &self,
        world: &mut World,
        path: impl AsRef<Path>,
        ids: impl IntoIterator<Item = u64>,
        mode: LoadMode,
    ) -> Result<LoadReport> {
        self.validate()?;
        let only: HashSet<u64> = ids.into_iter().collect();
        let file = File::open_read_only(path.as_ref(), Schema::new())?;
        self.load_file(world, &file, mode, Some(&only))
            .map(|(report, _)| report)
    }

    /// An in-memory copy of the world's persisted part (a snapshot to memory), for undo and
    /// rollback: [`rollback`](Self::rollback) puts it back.
    pub fn checkpoint(&self, world: &mut World) -> Result<Checkpoint> {
        let mut sync = H5Sync::in_memory(self)?;
        let stats = sync.flush_all(world)?;
        let file = sync.file().clone();
        drop(sync);
        Ok(Checkpoint {
            file,
            entities: stats.spawned,
        })
    }

    /// Puts the world's persisted part back as it was at `checkpoint` (a replacing load from
    /// memory: [`LoadMode::Replace`]). A checkpoint can be rolled back to any number of times.
    pub fn rollback(&self, world: &mut World, checkpoint: &Checkpoint) -> Result<LoadReport> {
        self.validate()?;
        self.load_file(world, &checkpoint.file, LoadMode::Replace, None)
            .map(|(report, _)| report)
    }

    /// Loads the world of `file`, or with `only` the entities of those ids (and then no
    /// resources).
    pub(crate) fn load_file(
        &self,
        world: &mut World,
        file: &File,
        mode: LoadMode,
        only: Option<&HashSet<u64>>,
    ) -> Result<(LoadReport, IdMap)> {
        self.load_file_with(world, file, mode, only, only.is_none())
    }

    /// The persistent ids of the entities stored in `file` for the registered types: entity
    /// groups, `/ecs/index` and the registered tables' `entity` columns, sorted, each once.
    pub(crate) fn file_ids(&self, file: &File) -> Result<Vec<u64>> {
        let layout = Layout::open(file.clone())?;
        let (comps, _) = self.instantiate();
        let mut ids = collect_ids(file, &layout, &comps, layout.entity_ids()?)?;
        sort_unique(&mut ids);
        Ok(ids)
    }

    /// [`load_file`](Self::load_file), loading the resources if `resources`.
    pub(crate) fn load_file_with(
        &self,
        world: &mut World,
        file: &File,
        mode: LoadMode,
        only: Option<&HashSet<u64>>,
        resources: bool,
    ) -> Result<(LoadReport, IdMap)> {
        let layout = Layout::open(file.clone())?;
        let (comps, res) = self.instantiate();
        let mut groups = layout.entity_groups()?;
        if let Some(only) = only {
            groups.retain(|g| only.contains(&g.0));
        }
        let mut ids = collect_ids(file, &layout, &comps, groups.iter().map(|g| g.0).collect())?;
        if let Some(only) = only {
            ids.retain(|id| only.contains(id));
            ids.sort_unstable();
            ids.dedup();
            if ids.len() < only.len() {
                let found: HashSet<u64> = ids.iter().copied().collect();
                let mut missing: Vec<u64> = only
                    .iter()
                    .copied()
                    .filter(|id| !found.contains(id))
                    .collect();
                missing.sort_unstable();
                return Err(EcsError::NotInFile {
                    path: file.path().to_path_buf(),
                    missing: missing.len(),
                    first: missing[0],
                });
            }
        }
        // A subset's replacing load reloads the world's entities with these ids in place
        // (same `Entity`: references to them and their children stay): their registered
        // components are removed, then loaded from the file.
        let mut keep = HashMap::new();
        let mut mode = mode;
        if let Some(only) = only
            && mode == LoadMode::Replace
        {
            for (e, id) in world
                .query_filtered::<(Entity, &PersistentId), With<Persist>>()
                .iter(world)
            {
                if only.contains(&id.0) {
                    keep.insert(id.0, e);
                }
            }
            for &e in keep.values() {
                for c in &comps {
                    c.unload(world, e);
                }
            }
            mode = LoadMode::Add;
        }
        let spawned = spawn_persisted(world, file, ids, layout.next_id(), mode, &keep)?;
        // A subset's references outside it resolve to the world's persisted entities.
        let outside = only.map(|_| {
            let mut world_ids = OutsideRefs {
                loaded: &spawned.by_file,
                world: Default::default(),
            };
            for (e, id) in world
                .query_filtered::<(Entity, &PersistentId), With<Persist>>()
                .iter(world)
            {
                if spawned.by_file.entity(id.0).is_none() {
                    world_ids.world.insert(id.0, e);
                }
            }
            world_ids
        });
        let cx = LoadCx {
            layout: &layout,
            ids: &spawned.by_file,
            refs: match &outside {
                Some(o) => o,
                None => &spawned.by_file,
            },
            groups: &groups,
            only,
        };
        let mut report = LoadReport {
            entities: spawned.entities,
            tick: layout.tick().unwrap_or(0),
            renumbered: spawned.renumbered,
            ..Default::default()
        };
        // Every type is decoded first, then each entity gets all its components in one
        // insert (one archetype move per entity, not one per type).
        let mut stages = Vec::new();
        for c in &comps {
            match c.stage(world, &cx)? {
                Some(s) => stages.push(s),
                None => report.components += c.load(world, &cx)?,
            }
        }
        report.components += crate::staged::insert_all(world, stages);
        for r in res.iter().filter(|_| resources) {
            if r.load(world, &cx)? {
                report.resources += 1;
            }
        }
        // Relationship hooks (ChildOf → Children) run as commands: apply them now.
        world.flush();
        Ok((report, spawned.into_live()))
    }

    /// Loads the world as it was at simulation step `step` from the history of the synced file
    /// `path` (kept with [`H5Sync::keep_history`]): the entities that existed then, each
    /// registered component and resource as of its last committed sample at or before `step`,
    /// with the same remapping of `Entity` references and ids as [`load`](Self::load). The
    /// report's `tick` is the tick of the index sample used.
    pub fn load_at(
        &self,
        world: &mut World,
        path: impl AsRef<Path>,
        step: i64,
    ) -> Result<LoadReport> {
        use crate::history::{ENTITY, HistoryReader, INDEX_TAG, PRESENT, SampleCx};
        self.validate()?;
        if crate::sharded::is_sharded(path.as_ref()) {
            return self.load_at_sharded(world, path.as_ref(), step);
        }
        let reader = HistoryReader::open(path.as_ref())?;
        let file = reader.file().clone();
        let no_history = |why: String| not_ecs(&file, why);
        let k = reader
            .sample_at(INDEX_TAG, step)?
            .ok_or_else(|| no_history(format!("no history sample at or before step {step}")))?;
        let (g, gpath) = reader
            .group(INDEX_TAG)?
            .ok_or_else(|| no_history("no /ecs/history/index".into()))?;
        let index = h5pom_store::table::read_frame(&file, &g, &gpath, ENTITY, k)?;
        let present = index.names.iter().position(|n| n == PRESENT);
        let width = index.names.len();
        let ids: Vec<u64> = index
            .keys
            .iter()
            .enumerate()
            .filter(|&(i, _)| {
                present.is_none_or(|p| {
                    matches!(index.values[i * width + p], Some(h5pom_store::Value::U8(1)))
                })
            })
            .map(|(_, &id)| id)
            .collect();
        let tick = h5pom_store::series::read_value(&g, &gpath, crate::history::TICK, k)?
            .as_i128()
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0);
        let spawned = spawn_persisted(world, &file, ids, None, LoadMode::Add, &HashMap::new())?;
        let mut report = LoadReport {
            entities: spawned.entities,
            tick,
            renumbered: spawned.renumbered,
            ..Default::default()
        };
        for h in self.histories(&crate::History::new()) {
            let Some(sample) = reader.sample_at(h.tag(), step)? else {
                continue;
            };
            let Some((group, gpath)) = reader.group(h.tag())? else {
                continue;
            };
            let cx = SampleCx {
                file: &file,
                group: &group,
                path: &gpath,
                sample,
                ids: &spawned.by_file,
                step,
                committed: reader.committed_tick(),
            };
            let n = h.load_sample(world, &cx)?;
            if h.is_resource() {
                report.resources += n;
            } else {
                report.components += n;
            }
        }
        world.flush();
        Ok(report)
    }

    /// Writes the whole persisted world to `path`, atomically: the file is written under a
    /// temporary name next to `path`, synced to disk, then renamed over `path`, so a crash
    /// never leaves a half-written file under the target name.
    pub fn snapshot(&self, world: &mut World, path: impl AsRef<Path>) -> Result<crate::FlushStats> {
        self.snapshot_with(world, path, h5pom_store::ArrayOptions::default())
    }

    /// [`snapshot`](Self::snapshot) with the given array options (e.g. the live file's
    /// compression: `sync.array_options()`).
    pub fn snapshot_with(
        &self,
        world: &mut World,
        path: impl AsRef<Path>,
        arrays: h5pom_store::ArrayOptions,
    ) -> Result<crate::FlushStats> {
        self.snapshot_in_lane(world, path.as_ref(), arrays, None)
    }

    /// [`snapshot_with`](Self::snapshot_with); with `lane = Some((lanes, lane, floor))`, ids
    /// given to entities without one come from that lane (a shard of a sharded snapshot).
    pub(crate) fn snapshot_in_lane(
        &self,
        world: &mut World,
        path: &Path,
        arrays: h5pom_store::ArrayOptions,
        lane: Option<(u64, u64, u64)>,
    ) -> Result<crate::FlushStats> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let io = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| EcsError::Io {
                op,
                path: p,
                source,
            }
        };
        let stats = {
            let mut sync = H5Sync::create_with(&tmp, self, crate::Durability::Unprotected)?;
            sync.set_array_options(arrays);
            if let Some((lanes, lane, floor)) = lane {
                sync.share_ids(lanes, lane, floor);
            }
            let r = sync.flush_all(world);
            drop(sync);
            match r {
                Ok(s) => s,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
        };
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io("sync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("rename to", path))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("sync", dir))?;
        }
        Ok(stats)
    }
}

/// What a subset load's references resolve to: the entities it loads, then the world's
/// persisted entities outside the subset; an optional reference to neither loads as `None`.
struct OutsideRefs<'a> {
    loaded: &'a IdMap,
    world: HashMap<u64, Entity>,
}

impl h5pom_store::RefMap for OutsideRefs<'_> {
    fn persistent_id(&self, _bits: u64) -> Option<u64> {
        None
    }
    fn resolve(&self, id: u64) -> Option<u64> {
        self.loaded
            .resolve(id)
            .or_else(|| self.world.get(&id).map(|e| e.to_bits()))
    }
    fn unmapped_as_none(&self) -> bool {
        true
    }
}

/// An in-memory copy of a world's persisted part ([`Registry::checkpoint`]).
pub struct Checkpoint {
    file: File,
    entities: usize,
}

impl Checkpoint {
    /// Persisted entities it holds.
    pub fn entities(&self) -> usize {
        self.entities
    }
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("entities", &self.entities)
            .finish()
    }
}

impl H5Sync {
    /// Loads the world stored in `path` (a synced file, also one whose writer was killed, or
    /// a snapshot) into `world`, then keeps syncing into the same file, crash-safe: the next
    /// flush writes only what changes from here on. A plain file becomes a slot pair (see
    /// [`Durability`](crate::Durability)).
    pub fn resume(
        world: &mut World,
        path: impl AsRef<Path>,
        registry: &Registry,
    ) -> Result<(Self, LoadReport)> {
        Self::resume_with(world, path, registry, crate::Durability::default())
    }

    /// [`resume`](Self::resume) with the given durability.
    /// [`Unprotected`](crate::Durability::Unprotected) writes the file (or a pair's committed
    /// slot) in place.
    pub fn resume_with(
        world: &mut World,
        path: impl AsRef<Path>,
        registry: &Registry,
        durability: crate::Durability,
    ) -> Result<(Self, LoadReport)> {
        if let Ok(file) = File::open_read_only(path.as_ref(), Schema::new())
            && crate::sharded::run_info(&file)?.is_some()
        {
            return Err(EcsError::Sharded {
                path: path.as_ref().to_path_buf(),
                reason: "a sharded (MPI) run is resumed by ShardedSync::resume, on any number \
                         of writers"
                    .into(),
            });
        }
        let (mut sync, file) = H5Sync::reopen(path.as_ref(), registry, durability)?;
        let (report, ids) = registry.load_file(world, &file, LoadMode::Add, None)?;
        drop(file);
        sync.ids = ids;
        sync.resumed(world, report.tick);
        Ok((sync, report))
    }
}
