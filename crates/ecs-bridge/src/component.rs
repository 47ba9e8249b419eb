//! Per-type sync state: how one registered component or resource type reaches the file.

use std::marker::PhantomData;

use bevy_ecs::lifecycle::RemovedComponents;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use h5pom_store::reexports::hdf5::Group;
use h5pom_store::{
    DeferredArrays, Embed, File, Object, Row, RowRef, TAG_ATTR, Value, has_attr, read_row,
    set_attr, write_row,
};

use crate::error::{EcsError, Result};
use crate::ids::{IdMap, Persist};
use crate::layout::{TABLES, field_prefix};
use crate::table::{read_table, write_table};

/// What one flush of one type did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeFlush {
    /// Components written.
    pub written: usize,
    /// Components removed from the file.
    pub removed: usize,
    /// Tables rewritten.
    pub tables: usize,
}

/// Everything a type's flush needs besides the world.
pub(crate) struct FlushCx<'a> {
    pub(crate) file: &'a File,
    pub(crate) ecs: &'a Group,
    pub(crate) ids: &'a IdMap,
    /// Entities persisted since the last flush: all their components are written.
    pub(crate) new_entities: &'a [Entity],
    /// Write everything (snapshots), not only what changed.
    pub(crate) full: bool,
    /// Opens (or creates) an entity's group.
    pub(crate) entity_group: &'a dyn Fn(u64) -> Result<(Group, String)>,
}

/// Everything a type's load needs besides the world.
pub(crate) struct LoadCx<'a> {
    pub(crate) file: &'a File,
    pub(crate) ecs: &'a Group,
    /// Persistent ids in the file → entities of the world.
    pub(crate) ids: &'a IdMap,
    /// Entity groups present in the file: (file id, group, path).
    pub(crate) groups: &'a [(u64, Group, String)],
}

/// The sync of one component type (type-erased).
pub(crate) trait ComponentSync: Send + Sync {
    /// Reads removal events (cheap; runs every tick so that no event is missed).
    fn drain_removed(&mut self, world: &mut World);
    /// The table must be rewritten (an entity stopped being persisted).
    fn mark_dirty(&mut self);
    /// Writes what changed since the last flush.
    /// Writes what changed since the last flush; arrays go to `sink`, to be written by one
    /// parallel pass with every other type's arrays.
    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        sink: &mut DeferredArrays<'w>,
    ) -> Result<TypeFlush>;
    /// After a load into a synced world: what is in the world now is what the file holds, so
    /// nothing counts as changed.
    fn loaded(&mut self, world: &mut World);
    /// Inserts the stored components into the world.
    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<usize>;
    /// The ids of entities stored in this type's table (tables only).
    fn table_ids(&self, _ecs: &Group) -> Result<Vec<u64>> {
        Ok(Vec::new())
    }
}

type Changed_<C> =
    SystemState<Query<'static, 'static, (Entity, &'static C), (Changed<C>, With<Persist>)>>;
type All<C> = SystemState<Query<'static, 'static, (Entity, &'static C), With<Persist>>>;
type Removed<C> = SystemState<RemovedComponents<'static, 'static, C>>;

struct Queries<C: Component> {
    changed: Changed_<C>,
    all: All<C>,
    removed: Removed<C>,
}

impl<C: Component> Queries<C> {
    fn new(world: &mut World) -> Self {
        Queries {
            changed: SystemState::new(world),
            all: SystemState::new(world),
            removed: SystemState::new(world),
        }
    }
}

fn comp_err(tag: &'static str, id: u64) -> impl Fn(h5pom_store::Error) -> EcsError {
    move |source| EcsError::Component {
        entity: id,
        component: tag,
        source,
    }
}

/// Sync state is created in `drain_removed`/`init` (with `&mut World`) before any flush.
pub(crate) fn uninit() -> EcsError {
    EcsError::Table {
        component: "sync".into(),
        reason: "flush before the sync state was initialized".into(),
    }
}

fn query_err(e: impl std::fmt::Display) -> EcsError {
    EcsError::Table {
        component: "query".into(),
        reason: e.to_string(),
    }
}

/// A component stored in each entity's group: fields as attributes `<Tag>.<field>`, arrays as
/// datasets, presence as the attribute `<Tag>`.
pub(crate) struct GroupSync<C: Component> {
    q: Option<Queries<C>>,
    removed: Vec<Entity>,
    prefix: String,
    /// Ids whose presence attribute `<Tag>` is known to be written.
    present: std::collections::HashSet<u64>,
}

impl<C: Component + Object> GroupSync<C> {
    pub(crate) fn new() -> Self {
        GroupSync {
            q: None,
            removed: Vec::new(),
            prefix: field_prefix(C::TYPE_TAG),
            present: std::collections::HashSet::new(),
        }
    }

    fn queries(&mut self, world: &mut World) -> &mut Queries<C> {
        self.q.get_or_insert_with(|| Queries::new(world))
    }
}

/// Deletes every attribute and link of `g` whose name starts with `prefix`, and `presence`.
fn delete_prefixed(
    g: &Group,
    prefix: &str,
    presence: &str,
) -> h5pom_store::reexports::hdf5::Result<usize> {
    let mut n = 0;
    for a in g.attr_names()? {
        if a.starts_with(prefix) || a == presence {
            g.delete_attr(&a)?;
            n += 1;
        }
    }
    for l in g.member_names()? {
        if l.starts_with(prefix) {
            g.unlink(&l)?;
            n += 1;
        }
    }
    Ok(n)
}

impl<C: Component + Object> ComponentSync for GroupSync<C> {
    fn drain_removed(&mut self, world: &mut World) {
        let q = self.queries(world);
        if let Ok(mut r) = q.removed.get_mut(world) {
            let events: Vec<Entity> = r.read().collect();
            self.removed.extend(events);
        }
    }

    fn mark_dirty(&mut self) {}

    fn loaded(&mut self, world: &mut World) {
        let q = self.queries(world);
        let _ = q.changed.get(world);
        self.removed.clear();
    }

    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        sink: &mut DeferredArrays<'w>,
    ) -> Result<TypeFlush> {
        let mut out = TypeFlush::default();
        // Components removed from entities that are still persisted.
        for e in std::mem::take(&mut self.removed) {
            let alive_persisted = world.get::<Persist>(e).is_some();
            if !alive_persisted || world.get::<C>(e).is_some() {
                continue; // despawned or un-persisted (handled by the caller), or re-added
            }
            if let Some(id) = cx.ids.id(e) {
                let (g, path) = (cx.entity_group)(id)?;
                delete_prefixed(&g, &self.prefix, C::TYPE_TAG).map_err(|source| {
                    EcsError::Component {
                        entity: id,
                        component: C::TYPE_TAG,
                        source: h5pom_store::Error::Corrupt {
                            path,
                            reason: source.to_string(),
                        },
                    }
                })?;
                out.removed += 1;
                self.present.remove(&id);
            }
        }
        let prefix = self.prefix.clone();
        let full = cx.full;
        let q = self.q.as_mut().ok_or_else(uninit)?;
        let dirty: Vec<Entity> = if full {
            q.all
                .get(world)
                .map_err(query_err)?
                .iter()
                .map(|(e, _)| e)
                .collect()
        } else {
            let mut d: Vec<Entity> = q
                .changed
                .get(world)
                .map_err(query_err)?
                .iter()
                .map(|(e, _)| e)
                .collect();
            d.extend(
                cx.new_entities
                    .iter()
                    .copied()
                    .filter(|&e| world.get::<C>(e).is_some()),
            );
            d.sort_unstable();
            d.dedup();
            d
        };
        for e in dirty {
            let (Some(c), Some(id)) = (world.get::<C>(e), cx.ids.id(e)) else {
                continue;
            };
            let err = comp_err(C::TYPE_TAG, id);
            let (g, path) = (cx.entity_group)(id)?;
            if !self.present.contains(&id) {
                set_attr(&g, &path, C::TYPE_TAG, &Value::Bool(true)).map_err(&err)?;
                self.present.insert(id);
            }
            cx.file
                .write_fields_deferred(
                    &g,
                    &path,
                    c,
                    Embed {
                        prefix: Some(&prefix),
                        refs: Some(cx.ids),
                    },
                    sink,
                )
                .map_err(&err)?;
            out.written += 1;
        }
        Ok(out)
    }

    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<usize> {
        let mut batch = Vec::new();
        for (id, g, path) in cx.groups {
            if !has_attr(g, path, C::TYPE_TAG).map_err(comp_err(C::TYPE_TAG, *id))? {
                continue;
            }
            let Some(e) = cx.ids.entity(*id) else {
                continue;
            };
            let c: C = cx
                .file
                .read_fields(
                    g,
                    path,
                    Embed {
                        prefix: Some(&self.prefix),
                        refs: Some(cx.ids),
                    },
                )
                .map_err(comp_err(C::TYPE_TAG, *id))?;
            batch.push((e, c));
        }
        let n = batch.len();
        world.insert_batch(batch);
        Ok(n)
    }
}

/// A component stored as a column table `/ecs/tables/<Tag>`, rewritten whole when any of its
/// instances changed.
pub(crate) struct TableSync<C: Component> {
    q: Option<Queries<C>>,
    dirty: bool,
    row: Row,
    ids: Vec<u64>,
}

impl<C: Component + Object> TableSync<C> {
    pub(crate) fn new() -> Self {
        TableSync {
            q: None,
            dirty: true,
            row: Row::default(),
            ids: Vec::new(),
        }
    }
}

pub(crate) fn table_group(ecs: &Group, tag: &str, create: bool) -> Result<Option<Group>> {
    let h5 = |e: h5pom_store::reexports::hdf5::Error| EcsError::Table {
        component: tag.to_owned(),
        reason: e.to_string(),
    };
    let tables = if ecs.link_exists(TABLES) {
        ecs.group(TABLES).map_err(h5)?
    } else if create {
        ecs.create_group(TABLES).map_err(h5)?
    } else {
        return Ok(None);
    };
    if tables.link_exists(tag) {
        Ok(Some(tables.group(tag).map_err(h5)?))
    } else if create {
        let g = tables.create_group(tag).map_err(h5)?;
        let v: h5pom_store::reexports::hdf5::types::VarLenUnicode =
            tag.parse().map_err(|_| EcsError::InvalidTag {
                tag: tag.to_owned(),
            })?;
        g.new_attr::<h5pom_store::reexports::hdf5::types::VarLenUnicode>()
            .create(TAG_ATTR)
            .and_then(|a| a.write_scalar(&v))
            .map_err(h5)?;
        Ok(Some(g))
    } else {
        Ok(None)
    }
}

impl<C: Component + Object> ComponentSync for TableSync<C> {
    fn drain_removed(&mut self, world: &mut World) {
        let q = self.q.get_or_insert_with(|| Queries::new(world));
        if let Ok(mut r) = q.removed.get_mut(world) {
            if r.read().next().is_some() {
                self.dirty = true;
            }
            r.clear();
        }
    }

    fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    fn loaded(&mut self, world: &mut World) {
        let q = self.q.get_or_insert_with(|| Queries::new(world));
        let _ = q.changed.get(world);
        self.dirty = false;
    }

    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        _sink: &mut DeferredArrays<'w>,
    ) -> Result<TypeFlush> {
        let q = self.q.as_mut().ok_or_else(uninit)?;
        let changed = q
            .changed
            .get(world)
            .map_err(query_err)?
            .iter()
            .next()
            .is_some();
        let new = cx.new_entities.iter().any(|&e| world.get::<C>(e).is_some());
        if !(self.dirty || changed || new || cx.full) {
            return Ok(TypeFlush::default());
        }
        self.row.values.clear();
        self.ids.clear();
        let all = q.all.get(world).map_err(query_err)?;
        for (e, c) in all.iter() {
            let Some(id) = cx.ids.id(e) else { continue };
            self.ids.push(id);
            write_row(c, &mut self.row, Some(cx.ids)).map_err(comp_err(C::TYPE_TAG, id))?;
        }
        let g = table_group(cx.ecs, C::TYPE_TAG, true)?.ok_or_else(|| EcsError::Table {
            component: C::TYPE_TAG.into(),
            reason: "cannot create table".into(),
        })?;
        write_table(&g, C::TYPE_TAG, &self.ids, &self.row)?;
        self.dirty = false;
        Ok(TypeFlush {
            written: self.ids.len(),
            removed: 0,
            tables: 1,
        })
    }

    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<usize> {
        let Some(g) = table_group(cx.ecs, C::TYPE_TAG, false)? else {
            return Ok(0);
        };
        let mut t = read_table(&g, C::TYPE_TAG)?;
        let k = t.names.len();
        let mut batch = Vec::with_capacity(t.ids.len());
        for (i, id) in t.ids.iter().enumerate() {
            let Some(e) = cx.ids.entity(*id) else {
                continue;
            };
            let row = RowRef {
                names: &t.names,
                values: &mut t.values[i * k..(i + 1) * k],
            };
            let c: C = read_row(row, Some(cx.ids)).map_err(comp_err(C::TYPE_TAG, *id))?;
            batch.push((e, c));
        }
        let n = batch.len();
        world.insert_batch(batch);
        Ok(n)
    }

    fn table_ids(&self, ecs: &Group) -> Result<Vec<u64>> {
        match table_group(ecs, C::TYPE_TAG, false)? {
            Some(g) => crate::table::read_ids(&g, C::TYPE_TAG),
            None => Ok(Vec::new()),
        }
    }
}

/// The sync of one resource type.
pub(crate) trait ResourceSync: Send + Sync {
    fn init(&mut self, world: &mut World);
    /// After a load: the resource in the world is what the file holds.
    fn loaded(&mut self, world: &mut World);
    fn flush(&mut self, world: &World, cx: &FlushCx<'_>) -> Result<bool>;
    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<bool>;
}

pub(crate) struct ResSync<R: Resource> {
    state: Option<SystemState<Option<Res<'static, R>>>>,
    stored: bool,
    _r: PhantomData<fn() -> R>,
}

impl<R: Resource + Object> ResSync<R> {
    pub(crate) fn new() -> Self {
        ResSync {
            state: None,
            stored: false,
            _r: PhantomData,
        }
    }
}

fn res_err(tag: &'static str) -> impl Fn(h5pom_store::Error) -> EcsError {
    move |source| EcsError::Resource {
        resource: tag,
        source,
    }
}

impl<R: Resource + Object> ResourceSync for ResSync<R> {
    fn init(&mut self, world: &mut World) {
        self.state.get_or_insert_with(|| SystemState::new(world));
    }

    fn loaded(&mut self, world: &mut World) {
        let state = self.state.get_or_insert_with(|| SystemState::new(world));
        // Reading the resource once moves the change baseline past the load.
        self.stored = matches!(state.get(world), Ok(Some(_)));
    }

    fn flush(&mut self, world: &World, cx: &FlushCx<'_>) -> Result<bool> {
        let state = self.state.as_mut().ok_or_else(uninit)?;
        let res = state.get(world).map_err(query_err)?;
        let folder = cx.file.root();
        match res {
            Some(r) if r.is_changed() || cx.full || !self.stored => {
                let resources = folder
                    .create_folder(crate::layout::ECS_GROUP)
                    .and_then(|f| f.create_folder(crate::layout::RESOURCES))
                    .map_err(res_err(R::TYPE_TAG))?;
                if self.stored && !cx.full {
                    resources
                        .get::<R>(R::TYPE_TAG)
                        .and_then(|h| h.save(&r))
                        .map_err(res_err(R::TYPE_TAG))?;
                } else {
                    resources
                        .insert(R::TYPE_TAG, &*r)
                        .map_err(res_err(R::TYPE_TAG))?;
                }
                self.stored = true;
                Ok(true)
            }
            None if self.stored => {
                let resources = folder
                    .folder(crate::layout::ECS_GROUP)
                    .and_then(|f| f.folder(crate::layout::RESOURCES))
                    .map_err(res_err(R::TYPE_TAG))?;
                resources
                    .remove(R::TYPE_TAG)
                    .map_err(res_err(R::TYPE_TAG))?;
                self.stored = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<bool> {
        let Ok(resources) = cx
            .file
            .root()
            .folder(crate::layout::ECS_GROUP)
            .and_then(|f| f.folder(crate::layout::RESOURCES))
        else {
            return Ok(false);
        };
        if !resources
            .contains(R::TYPE_TAG)
            .map_err(res_err(R::TYPE_TAG))?
        {
            return Ok(false);
        }
        let (g, path) = {
            let f = resources
                .folder(R::TYPE_TAG)
                .map_err(res_err(R::TYPE_TAG))?;
            (f.hdf5_group().clone(), f.path().to_owned())
        };
        let r: R = cx
            .file
            .read_fields(
                &g,
                &path,
                Embed {
                    prefix: None,
                    refs: Some(cx.ids),
                },
            )
            .map_err(res_err(R::TYPE_TAG))?;
        world.insert_resource(r);
        Ok(true)
    }
}
