//! [`H5Sync`]: the resource that keeps a world and a file in step.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy_ecs::lifecycle::RemovedComponents;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use h5pom_store::reexports::hdf5::{self, Group};
use h5pom_store::{DeferredArrays, File, Schema, TAG_ATTR};

use crate::component::{ComponentSync, FlushCx, ResourceSync};
use crate::error::{EcsError, Result};
use crate::ids::{IdMap, Persist, PersistentId};
use crate::layout::*;
use crate::registry::Registry;

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
    /// Tables rewritten.
    pub tables: usize,
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
    /// False if nothing was dirty: no HDF5 call was made.
    pub wrote: bool,
    /// Wall time of the flush.
    pub duration: Duration,
}

type AddedQ =
    SystemState<Query<'static, 'static, (Entity, &'static mut PersistentId), Added<Persist>>>;
type RemovedQ = SystemState<RemovedComponents<'static, 'static, Persist>>;

/// Keeps the persisted part of a world in sync with one HDF5 file. Insert it as a resource and
/// run [`flush_system`](crate::flush_system) every tick.
#[derive(Resource)]
pub struct H5Sync {
    file: File,
    path: PathBuf,
    comps: Vec<Box<dyn ComponentSync>>,
    res: Vec<Box<dyn ResourceSync>>,
    pub(crate) ids: IdMap,
    added: Option<AddedQ>,
    removed: Option<RemovedQ>,
    pending_new: Vec<Entity>,
    pending_gone: Vec<Entity>,
    policy: FlushPolicy,
    ticks: u64,
    flushes: u64,
    last: FlushStats,
    /// Ids whose entity group is known to exist in the file.
    known_groups: HashSet<u64>,
    last_error: Option<EcsError>,
}

fn h5err<'p>(op: &'static str, path: &'p str) -> impl Fn(hdf5::Error) -> EcsError + 'p {
    move |source| {
        EcsError::Store(h5pom_store::Error::Hdf5 {
            op,
            path: path.to_owned(),
            source,
        })
    }
}

fn open_or_create(parent: &Group, name: &str, parent_path: &str) -> Result<Group> {
    if parent.link_exists(name) {
        parent.group(name).map_err(h5err("open group", parent_path))
    } else {
        parent
            .create_group(name)
            .map_err(h5err("create group", parent_path))
    }
}

impl H5Sync {
    /// Creates (truncates) `path` and syncs into it.
    pub fn create(path: impl AsRef<Path>, registry: &Registry) -> Result<Self> {
        registry.validate()?;
        let file = File::create(path.as_ref(), Schema::new())?;
        Self::with_file(file, path.as_ref().to_path_buf(), registry)
    }

    /// Syncs into an in-memory file (tests, benchmarks).
    pub fn in_memory(registry: &Registry) -> Result<Self> {
        registry.validate()?;
        let file = File::in_memory(Schema::new())?;
        let path = file.path().to_path_buf();
        Self::with_file(file, path, registry)
    }

    pub(crate) fn with_file(file: File, path: PathBuf, registry: &Registry) -> Result<Self> {
        let root = file.hdf5().group("/").map_err(h5err("open root", "/"))?;
        let ecs = open_or_create(&root, ECS_GROUP, "/")?;
        write_u64(&ecs, LAYOUT_VERSION_ATTR, u64::from(LAYOUT_VERSION))?;
        let (comps, res) = registry.instantiate();
        Ok(H5Sync {
            file,
            path,
            comps,
            res,
            ids: IdMap::new(),
            added: None,
            removed: None,
            pending_new: Vec::new(),
            pending_gone: Vec::new(),
            policy: FlushPolicy::EveryTick,
            ticks: 0,
            flushes: 0,
            last: FlushStats::default(),
            known_groups: HashSet::new(),
            last_error: None,
        })
    }

    /// Sets when the flush system writes.
    pub fn set_policy(&mut self, policy: FlushPolicy) {
        self.policy = policy;
    }

    /// The file being written.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The path of the file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Completed flushes (the tick number stored in the file).
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// What the last flush did.
    pub fn last_flush(&self) -> FlushStats {
        self.last
    }

    /// Number of persisted entities known to the sync.
    pub fn persisted_entities(&self) -> usize {
        self.ids.len()
    }

    /// The error of the last failed flush (cleared by the next successful one). The flush
    /// system also returns it to bevy's error handler.
    pub fn last_error(&self) -> Option<&EcsError> {
        self.last_error.as_ref()
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
        match self.flush_inner(world, false) {
            Ok(_) => {
                self.last_error = None;
                Ok(())
            }
            Err(e) => {
                let shown = EcsError::Table {
                    component: "flush".into(),
                    reason: e.to_string(),
                };
                self.last_error = Some(e);
                Err(shown)
            }
        }
    }

    /// Flushes now, whatever the policy.
    pub fn flush_now(&mut self, world: &mut World) -> Result<FlushStats> {
        self.collect(world);
        self.flush_inner(world, false)
    }

    /// Writes every persisted component and resource, changed or not.
    pub(crate) fn flush_all(&mut self, world: &mut World) -> Result<FlushStats> {
        self.collect(world);
        self.flush_inner(world, true)
    }

    /// After a load: consume the load's own spawn events, so that nothing is rewritten.
    pub(crate) fn resumed(&mut self, world: &mut World, tick: u64) {
        self.collect(world);
        self.pending_new.clear();
        self.pending_gone.clear();
        for c in &mut self.comps {
            c.loaded(world);
        }
        for r in &mut self.res {
            r.loaded(world);
        }
        self.flushes = tick;
    }

    /// Reads this tick's new persisted entities and removals (no HDF5 call).
    fn collect(&mut self, world: &mut World) {
        let added = self.added.get_or_insert_with(|| SystemState::new(world));
        if let Ok(mut q) = added.get_mut(world) {
            for (e, mut pid) in q.iter_mut() {
                let taken = self.ids.entity(pid.0).is_some_and(|other| other != e);
                if pid.0 == 0 || taken {
                    pid.0 = self.ids.allocate();
                }
                self.ids.insert(e, pid.0);
                self.pending_new.push(e);
            }
        }
        let removed = self.removed.get_or_insert_with(|| SystemState::new(world));
        if let Ok(mut r) = removed.get_mut(world) {
            self.pending_gone.extend(r.read());
        }
        for c in &mut self.comps {
            c.drain_removed(world);
        }
        for r in &mut self.res {
            r.init(world);
        }
    }

    fn flush_inner(&mut self, world: &mut World, full: bool) -> Result<FlushStats> {
        let start = Instant::now();
        let mut stats = FlushStats::default();
        let root = self
            .file
            .hdf5()
            .group("/")
            .map_err(h5err("open root", "/"))?;
        let ecs = root.group(ECS_GROUP).map_err(h5err("open group", "/ecs"))?;
        // Entities no longer persisted: drop their groups, and rows from every table.
        for e in std::mem::take(&mut self.pending_gone) {
            if world.get::<Persist>(e).is_some() {
                continue;
            }
            if let Some(id) = self.ids.remove_entity(e) {
                self.known_groups.remove(&id);
                let path = entity_path(id);
                if root.link_exists(&path) {
                    root.unlink(&path).map_err(h5err("delete entity", &path))?;
                }
                stats.despawned += 1;
                for c in &mut self.comps {
                    c.mark_dirty();
                }
            }
        }
        let new = std::mem::take(&mut self.pending_new);
        stats.spawned = new.len();
        // Entity groups: shard handles are opened once per flush (at most one per 1024
        // entities), and ids whose group is known to exist skip the existence check.
        let known = RefCell::new(std::mem::take(&mut self.known_groups));
        let shards: RefCell<HashMap<u64, Group>> = RefCell::new(HashMap::new());
        let entity_group = |id: u64| -> Result<(Group, String)> {
            let path = entity_path(id);
            let shard_no = id / SHARD_SIZE;
            let shard = shards.borrow().get(&shard_no).cloned();
            let shard = match shard {
                Some(g) => g,
                None => {
                    let entities = open_or_create(&ecs, ENTITIES, "/ecs")?;
                    let g = open_or_create(&entities, &shard_name(id), "/ecs/entities")?;
                    shards.borrow_mut().insert(shard_no, g.clone());
                    g
                }
            };
            let name = id.to_string();
            if known.borrow().contains(&id) || shard.link_exists(&name) {
                known.borrow_mut().insert(id);
                let g = shard.group(&name).map_err(h5err("open entity", &path))?;
                return Ok((g, path));
            }
            let g = shard
                .create_group(&name)
                .map_err(h5err("create entity", &path))?;
            let tag: hdf5::types::VarLenUnicode =
                ENTITY_TAG.parse().map_err(|_| EcsError::InvalidTag {
                    tag: ENTITY_TAG.into(),
                })?;
            g.new_attr::<hdf5::types::VarLenUnicode>()
                .create(TAG_ATTR)
                .and_then(|a| a.write_scalar(&tag))
                .map_err(h5err("tag entity", &path))?;
            known.borrow_mut().insert(id);
            Ok((g, path))
        };
        let cx = FlushCx {
            file: &self.file,
            ecs: &ecs,
            ids: &self.ids,
            new_entities: &new,
            full,
            entity_group: &entity_group,
        };
        // Every component type's arrays are collected, then written in one parallel pass.
        let world: &World = world;
        let mut arrays = DeferredArrays::new();
        for c in &mut self.comps {
            let f = c.flush(world, &cx, &mut arrays)?;
            stats.components += f.written;
            stats.removed += f.removed;
            stats.tables += f.tables;
        }
        stats.array_bytes = arrays.bytes();
        if !arrays.is_empty() {
            let w = self.file.write_deferred(arrays)?;
            stats.arrays_stored = w.bytes_stored;
        }
        for r in &mut self.res {
            if r.flush(world, &cx)? {
                stats.resources += 1;
            }
        }
        self.known_groups = known.into_inner();
        if full || stats.spawned + stats.despawned > 0 {
            crate::table::write_column(&ecs, INDEX, INDEX, &self.ids.sorted_ids())?;
        }
        stats.wrote = full
            || stats.components
                + stats.removed
                + stats.tables
                + stats.resources
                + stats.despawned
                + stats.spawned
                > 0;
        if stats.wrote {
            self.flushes += 1;
            write_u64(&ecs, TICK_ATTR, self.flushes)?;
            write_u64(&ecs, NEXT_ID_ATTR, self.ids.next)?;
            self.file.flush()?;
        }
        stats.duration = start.elapsed();
        self.last = stats;
        Ok(stats)
    }
}

pub(crate) fn write_u64(g: &Group, name: &str, v: u64) -> Result<()> {
    let r = match g.attr(name) {
        Ok(a)
            if a.dtype().and_then(|t| t.to_descriptor()).ok()
                == Some(<u64 as hdf5::H5Type>::type_descriptor()) =>
        {
            a.write_scalar(&v)
        }
        Ok(_) => g
            .delete_attr(name)
            .and_then(|_| g.new_attr::<u64>().create(name))
            .and_then(|a| a.write_scalar(&v)),
        Err(_) => g
            .new_attr::<u64>()
            .create(name)
            .and_then(|a| a.write_scalar(&v)),
    };
    r.map_err(h5err("write attribute", name))
}

pub(crate) fn read_u64(g: &Group, name: &str) -> Option<u64> {
    g.attr(name).ok()?.read_scalar::<u64>().ok()
}
