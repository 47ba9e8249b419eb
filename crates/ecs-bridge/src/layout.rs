//! The `/ecs` layout: where the bridge puts things in the file (specified in `docs/FORMAT.md`,
//! "ECS layout"), and `Layout`, the one owner of that group. Every read and write of `/ecs`
//! (version, tick, next id, entity groups and their shards, tables, resources, the index) goes
//! through it; the rest of the bridge never calls HDF5.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use h5pom_store::mirror::{MIRROR_SOURCE_ATTR, Mirror};
use h5pom_store::reexports::hdf5::{self, Group};
use h5pom_store::{
    File, Folder, Schema, TAG_ATTR, Value, create_attr, get_attr, has_attr, set_attr, table,
};

use crate::error::{EcsError, Result};

/// The group holding everything the bridge writes.
pub const ECS_GROUP: &str = "ecs";
/// Entities' groups, sharded: `/ecs/entities/<shard>/<id>`.
pub const ENTITIES: &str = "entities";
/// Column tables, one per table-stored component: `/ecs/tables/<Tag>`.
pub const TABLES: &str = "tables";
/// Resources, one group each: `/ecs/resources/<Tag>`.
pub const RESOURCES: &str = "resources";
/// Dataset `/ecs/index`: the persistent ids of all persisted entities (`uint64`, sorted), so
/// that entities without stored components survive a reload too.
pub const INDEX: &str = "index";
/// Attribute on `/ecs`: the number of completed flushes (the tick the file is at).
pub const TICK_ATTR: &str = "tick";
/// Attribute on `/ecs`: the next persistent id to hand out.
pub const NEXT_ID_ATTR: &str = "next-id";
/// Attribute on `/ecs`: the version of the ECS layout.
pub const LAYOUT_VERSION_ATTR: &str = "layout-version";
/// The ECS layout version this build writes (and the newest it reads; it reads every older
/// one). 2: table columns carry the file's array filters and are chunked by rows
/// (`h5pom_store::table::chunk_rows`). 3: `/ecs/history` and the H5MD roots may link to a
/// history file (`docs/FORMAT.md`, "History"). 4: `/ecs/history` of a run file mirrors the
/// history file's through virtual datasets (with its dimension scales), instead of linking
/// to it.
pub const LAYOUT_VERSION: u32 = 4;
/// The `loader-key` of entity groups.
pub const ENTITY_TAG: &str = "ecs-entity";
/// Column of a table holding the entities' persistent ids.
pub const ENTITY_COLUMN: &str = "entity";
/// Suffix of a table's mask column marking `None` values: `<field>-none` (uint8, 1 = None).
pub const NONE_SUFFIX: &str = h5pom_store::table::NONE_SUFFIX;
/// Attributes an entity group keeps in its object header before it moves them to dense
/// storage (a fractal heap and a B-tree per group; HDF5's default is 8, which an entity
/// with three components already exceeds). HDF5 caps the value at 65,535; an object header
/// message holds at most 64 KiB, so large attributes still go dense.
const ENTITY_MAX_COMPACT_ATTRS: u32 = 64;
/// Below this many attributes a dense entity group goes back to compact storage.
const ENTITY_MIN_DENSE_ATTRS: u32 = 48;
/// Entities per shard group.
pub const SHARD_SIZE: u64 = 1024;

/// The shard group name of an entity id.
pub fn shard_name(id: u64) -> String {
    format!("{:x}", id / SHARD_SIZE)
}

/// The path of an entity's group, relative to the file root.
pub fn entity_path(id: u64) -> String {
    format!("/{ECS_GROUP}/{ENTITIES}/{}/{id}", shard_name(id))
}

/// The name prefix of a group-stored component's fields on the entity group: `<Tag>.`.
pub fn field_prefix(tag: &str) -> String {
    format!("{tag}.")
}

/// An entity's group, opened (or created) by [`Layout::entity`].
pub(crate) struct EntityGroup {
    pub(crate) group: Group,
    pub(crate) path: String,
    /// Created by this call: it holds its tag and nothing else.
    pub(crate) fresh: bool,
}

/// A table's group, opened (or created) by [`Layout::table`].
pub(crate) struct TableGroup {
    pub(crate) group: Group,
    pub(crate) path: String,
}

/// The `/ecs` group of one open file: the only code in the bridge that calls HDF5.
///
/// Handles it opens stay open while the layout lives (the `/ecs` group, the entity shards,
/// the tables), so a flush with nothing to write makes no HDF5 call at all.
pub(crate) struct Layout {
    file: File,
    ecs: Group,
    /// Open shard groups, by shard number (at most one per [`SHARD_SIZE`] entities).
    shards: Mutex<HashMap<u64, Group>>,
    /// Ids whose entity group is known to exist.
    known: Mutex<HashSet<u64>>,
    /// Shards this layout created: an id in one of them that is not `known` has no group
    /// (no link lookup before creating it).
    created_shards: Mutex<HashSet<u64>>,
    tables: Mutex<HashMap<String, Group>>,
    /// `/ecs/history` as mirrors of the history file's (`None` until the first flush with
    /// history sets the group up).
    history_mirror: Mutex<Option<Mirror>>,
}

/// An HDF5 failure at `path` while doing `op`: the bridge's one mapping of them.
pub(crate) fn h5(
    op: &'static str,
    path: impl Into<String>,
) -> impl FnOnce(hdf5::Error) -> EcsError {
    let path = path.into();
    move |source| EcsError::Store(h5pom_store::Error::Hdf5 { op, path, source })
}

/// The file is not an ECS file h5pom can read, for `reason`.
pub(crate) fn not_ecs(file: &File, reason: impl Into<String>) -> EcsError {
    EcsError::NotEcsFile {
        path: file.path().to_path_buf(),
        reason: reason.into(),
    }
}

fn open_or_create(parent: &Group, name: &str, path: &str) -> Result<Group> {
    if parent.link_exists(name) {
        parent.group(name).map_err(h5("open group", path))
    } else {
        parent.create_group(name).map_err(h5("create group", path))
    }
}

/// Writes the `loader-key` type tag of a group the layout creates.
fn tag(g: &Group, path: &str, tag: &str) -> Result<()> {
    set_attr(g, path, TAG_ATTR, &Value::Str(tag.to_owned())).map_err(EcsError::from)
}

fn u64_attr(g: &Group, path: &str, name: &str) -> Result<Option<u64>> {
    Ok(get_attr(g, path, name)?
        .and_then(|v| v.as_i128())
        .and_then(|v| u64::try_from(v).ok()))
}

const ECS_PATH: &str = "/ecs";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Layout {
    /// Lays out `/ecs` in a new file, at tick 0, and flushes the file.
    pub(crate) fn create(file: File) -> Result<Self> {
        let root = file.hdf5().group("/").map_err(h5("open group", "/"))?;
        let ecs = open_or_create(&root, ECS_GROUP, "/")?;
        let l = Layout::with_group(file, ecs);
        l.set(LAYOUT_VERSION_ATTR, u64::from(LAYOUT_VERSION))?;
        l.set(TICK_ATTR, 0)?;
        l.file.flush()?;
        Ok(l)
    }

    /// Opens the layout of an existing file, refusing a file without one or with a newer one.
    pub(crate) fn open(file: File) -> Result<Self> {
        let ecs = match file.hdf5().group(ECS_GROUP) {
            Ok(g) => g,
            Err(e) => {
                return Err(not_ecs(
                    &file,
                    format!("no /{ECS_GROUP} group, not written by h5pom-ecs ({e})"),
                ));
            }
        };
        let l = Layout::with_group(file, ecs);
        let version = u64_attr(&l.ecs, ECS_PATH, LAYOUT_VERSION_ATTR)
            .map_err(|e| not_ecs(&l.file, format!("bad ECS layout version: {e}")))?;
        match version {
            Some(v) if v <= u64::from(LAYOUT_VERSION) => Ok(l),
            Some(v) => Err(not_ecs(
                &l.file,
                format!("ECS layout version {v} is newer than {LAYOUT_VERSION}"),
            )),
            None => Err(not_ecs(&l.file, "no ECS layout version")),
        }
    }

    fn with_group(file: File, ecs: Group) -> Self {
        Layout {
            file,
            ecs,
            shards: Mutex::new(HashMap::new()),
            known: Mutex::new(HashSet::new()),
            created_shards: Mutex::new(HashSet::new()),
            tables: Mutex::new(HashMap::new()),
            history_mirror: Mutex::new(None),
        }
    }

    /// The file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    fn set(&self, name: &str, v: u64) -> Result<()> {
        set_attr(&self.ecs, ECS_PATH, name, &Value::U64(v)).map_err(EcsError::from)
    }

    /// `/ecs@tick`: completed flushes.
    pub(crate) fn tick(&self) -> Result<u64> {
        u64_attr(&self.ecs, ECS_PATH, TICK_ATTR)
            .ok()
            .flatten()
            .ok_or_else(|| not_ecs(&self.file, format!("no readable /{ECS_GROUP}@{TICK_ATTR}")))
    }

    /// `/ecs@next-id`, if stored.
    pub(crate) fn next_id(&self) -> Option<u64> {
        u64_attr(&self.ecs, ECS_PATH, NEXT_ID_ATTR).ok().flatten()
    }

    /// Records a completed flush: the tick and the next id to hand out.
    pub(crate) fn set_counters(&self, tick: u64, next_id: u64) -> Result<()> {
        self.set(TICK_ATTR, tick)?;
        self.set(NEXT_ID_ATTR, next_id)
    }

    /// The tick of the synced file at `path`, opened read-only (the file's commit check).
    pub(crate) fn read_tick(path: &Path) -> Result<u64> {
        let file = File::open_read_only(path, Schema::new())?;
        Layout::open(file)?.tick()
    }

    fn shard(&self, id: u64) -> Result<Group> {
        let no = id / SHARD_SIZE;
        if let Some(g) = self
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&no)
        {
            return Ok(g.clone());
        }
        let entities = open_or_create(&self.ecs, ENTITIES, ECS_PATH)?;
        let name = shard_name(id);
        let g = if entities.link_exists(&name) {
            entities
                .group(&name)
                .map_err(h5("open group", "/ecs/entities"))?
        } else {
            let g = entities
                .create_group(&name)
                .map_err(h5("create group", "/ecs/entities"))?;
            self.created_shards
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(no);
            g
        };
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(no, g.clone());
        Ok(g)
    }

    /// Opens entity `id`'s group, creating it (with its tag) if missing.
    pub(crate) fn entity(&self, id: u64) -> Result<EntityGroup> {
        let path = entity_path(id);
        let shard = self.shard(id)?;
        let name = id.to_string();
        let exists = lock(&self.known).contains(&id)
            || (!lock(&self.created_shards).contains(&(id / SHARD_SIZE))
                && shard.link_exists(&name));
        let (group, fresh) = if exists {
            let g = shard.group(&name).map_err(h5("open entity", &path))?;
            (g, false)
        } else {
            let g = shard
                .create_group_builder()
                .with_gcpl(|p| {
                    p.attr_phase_change(ENTITY_MAX_COMPACT_ATTRS, ENTITY_MIN_DENSE_ATTRS)
                        .obj_track_times(false)
                })
                .create(name.as_str())
                .map_err(h5("create entity", &path))?;
            create_attr(&g, &path, TAG_ATTR, &Value::Str(ENTITY_TAG.to_owned()))?;
            (g, true)
        };
        lock(&self.known).insert(id);
        Ok(EntityGroup { group, path, fresh })
    }

    /// Deletes entity `id`'s group if it exists.
    pub(crate) fn delete_entity(&self, id: u64) -> Result<()> {
        let path = entity_path(id);
        lock(&self.known).remove(&id);
        let shard = self.shard(id)?;
        let name = id.to_string();
        if shard.link_exists(&name) {
            shard.unlink(&name).map_err(h5("delete entity", path))?;
        }
        Ok(())
    }

    /// Deletes a group-stored component from an entity group: every attribute and link whose
    /// name starts with `prefix`, and the presence attribute `presence`.
    pub(crate) fn clear_component(
        &self,
        e: &EntityGroup,
        prefix: &str,
        presence: &str,
    ) -> Result<()> {
        let g = &e.group;
        let r = (|| -> hdf5::Result<()> {
            for a in g.attr_names()? {
                if a.starts_with(prefix) || a == presence {
                    g.delete_attr(&a)?;
                }
            }
            for l in g.member_names()? {
                if l.starts_with(prefix) {
                    g.unlink(&l)?;
                }
            }
            Ok(())
        })();
        r.map_err(h5("delete component", &e.path))
    }

    /// Marks a group-stored component `tag` present on an entity (attribute `<Tag>` = true).
    pub(crate) fn mark_present(&self, e: &EntityGroup, tag: &str) -> h5pom_store::Result<()> {
        if e.fresh {
            create_attr(&e.group, &e.path, tag, &Value::Bool(true))
        } else {
            set_attr(&e.group, &e.path, tag, &Value::Bool(true))
        }
    }

    /// True if the entity has the group-stored component `tag`.
    pub(crate) fn has_component(&self, e: &EntityGroup, tag: &str) -> h5pom_store::Result<bool> {
        has_attr(&e.group, &e.path, tag)
    }

    /// Every entity group's id and shard group, checked to sit in its shard (names only: no
    /// entity group is opened).
    fn entity_names(&self) -> Result<Vec<(u64, Group, String)>> {
        let mut out = Vec::new();
        if !self.ecs.link_exists(ENTITIES) {
            return Ok(out);
        }
        let bad = |e: hdf5::Error| not_ecs(&self.file, e.to_string());
        let entities = self.ecs.group(ENTITIES).map_err(bad)?;
        for shard in entities.member_names().map_err(bad)? {
            let sg = entities.group(&shard).map_err(bad)?;
            for name in sg.member_names().map_err(bad)? {
                let id: u64 = name.parse().map_err(|_| {
                    not_ecs(
                        &self.file,
                        format!("entity group name {name:?} is not an id"),
                    )
                })?;
                if shard_name(id) != shard {
                    return Err(not_ecs(
                        &self.file,
                        format!("entity {id} is in shard {shard}"),
                    ));
                }
                out.push((id, sg.clone(), name));
            }
        }
        Ok(out)
    }

    /// The ids of every entity group in the file (no entity group is opened).
    pub(crate) fn entity_ids(&self) -> Result<Vec<u64>> {
        Ok(self
            .entity_names()?
            .into_iter()
            .map(|(id, ..)| id)
            .collect())
    }

    /// Every entity group in the file, checked to sit in its shard.
    pub(crate) fn entity_groups(&self) -> Result<Vec<(u64, EntityGroup)>> {
        let bad = |e: hdf5::Error| not_ecs(&self.file, e.to_string());
        self.entity_names()?
            .into_iter()
            .map(|(id, sg, name)| {
                let group = sg.group(&name).map_err(bad)?;
                Ok((
                    id,
                    EntityGroup {
                        group,
                        path: entity_path(id),
                        fresh: false,
                    },
                ))
            })
            .collect()
    }

    /// The table of component `tag` (`/ecs/tables/<tag>`); created (with its tag attribute)
    /// if `create`, else `None` when absent.
    pub(crate) fn table(&self, tag: &str, create: bool) -> Result<Option<TableGroup>> {
        let path = format!("/{ECS_GROUP}/{TABLES}/{tag}");
        if let Some(g) = self
            .tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tag)
        {
            return Ok(Some(TableGroup {
                group: g.clone(),
                path,
            }));
        }
        let tables = if self.ecs.link_exists(TABLES) {
            self.ecs.group(TABLES).map_err(h5("open group", ECS_PATH))?
        } else if create {
            self.ecs
                .create_group(TABLES)
                .map_err(h5("create group", ECS_PATH))?
        } else {
            return Ok(None);
        };
        let group = if tables.link_exists(tag) {
            tables.group(tag).map_err(h5("open table", &path))?
        } else if create {
            let g = tables
                .create_group(tag)
                .map_err(h5("create table", &path))?;
            self::tag(&g, &path, tag)?;
            g
        } else {
            return Ok(None);
        };
        if !self.file.is_read_only() {
            self.tables
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(tag.to_owned(), group.clone());
        }
        Ok(Some(TableGroup { group, path }))
    }

    /// The resources' folder (`/ecs/resources`); created if `create`, else `None` when absent.
    pub(crate) fn resources(&self, create: bool) -> Result<Option<Folder>> {
        let ecs = self.file.root().folder(ECS_GROUP)?;
        if create {
            return Ok(Some(ecs.create_folder(RESOURCES)?));
        }
        if !ecs.contains(RESOURCES)? {
            return Ok(None);
        }
        Ok(Some(ecs.folder(RESOURCES)?))
    }

    /// Presents the history file `file_name` (in the same directory; its `/ecs/history` is
    /// `src`) in this file: `/ecs/history` mirrors it (virtual datasets and dimension scales,
    /// brought up to date with `src` at each call), and the root groups `roots` are external
    /// links to the same paths in it. Returns how many datasets were (re)mirrored.
    pub(crate) fn link_history(
        &self,
        file_name: &str,
        roots: &[&str],
        src: &Group,
    ) -> Result<usize> {
        let mut mirror = self
            .history_mirror
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let path = format!("{ECS_PATH}/{}", crate::history::HISTORY);
        if mirror.is_none() {
            // Layout version 3 linked `/ecs/history` to the history file: the link goes (a
            // group opened through it would be the history file's own).
            let external = self
                .ecs
                .links(hdf5::IndexType::Name, hdf5::IterationOrder::Native)
                .map_err(h5("list links", ECS_PATH))?
                .into_iter()
                .any(|(n, info)| {
                    n == crate::history::HISTORY && info.link_type != hdf5::LinkType::Hard
                });
            if external {
                self.ecs
                    .unlink(crate::history::HISTORY)
                    .map_err(h5("delete link", &path))?;
            }
            let group = if self.ecs.link_exists(crate::history::HISTORY) {
                self.ecs
                    .group(crate::history::HISTORY)
                    .map_err(h5("open group", &path))?
            } else {
                self.ecs
                    .create_group(crate::history::HISTORY)
                    .map_err(h5("create group", &path))?
            };
            set_attr(
                &group,
                &path,
                MIRROR_SOURCE_ATTR,
                &Value::Str(file_name.to_owned()),
            )?;
            let root = self.file.hdf5().group("/").map_err(h5("open group", "/"))?;
            for name in roots {
                if !root.link_exists(name) {
                    root.link_external(file_name, &format!("/{name}"), name)
                        .map_err(h5("link history", format!("/{name}")))?;
                }
            }
            // A file resumed from an older layout is brought to this one.
            self.set(LAYOUT_VERSION_ATTR, u64::from(LAYOUT_VERSION))?;
            *mirror = Some(Mirror::new(file_name, crate::history::STEP));
        }
        let dst = self
            .ecs
            .group(crate::history::HISTORY)
            .map_err(h5("open group", &path))?;
        let m = mirror.as_mut().ok_or(EcsError::Uninitialized)?;
        Ok(m.update(src, &dst, &path)?)
    }

    /// Writes `/ecs/index`: the sorted persistent ids of all persisted entities.
    pub(crate) fn write_index(&self, ids: &[u64]) -> Result<()> {
        table::write_ids(&self.file, &self.ecs, ECS_PATH, INDEX, ids).map_err(EcsError::from)
    }

    /// Reads `/ecs/index` (`None` if the file has none).
    pub(crate) fn read_index(&self) -> Result<Option<Vec<u64>>> {
        if !self.ecs.link_exists(INDEX) {
            return Ok(None);
        }
        let ds = self
            .ecs
            .dataset(INDEX)
            .map_err(|e| not_ecs(&self.file, format!("bad /ecs/index: {e}")))?;
        table::read_id_column(&self.file, &ds, ECS_PATH, INDEX)
            .map(Some)
            .map_err(|e| not_ecs(&self.file, format!("bad /ecs/index: {e}")))
    }
}
