//! Per-type sync state: how one registered component type reaches the file. Group-stored
//! components live here; table-stored ones in [`crate::table`], resources in
//! [`crate::resource`].

use bevy_ecs::lifecycle::RemovedComponents;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use h5pom_store::{
    DeferredArrays, Embed, RefMap, Row, Value, create_attr, overwrite_attr, set_attr,
};

use crate::codec::Codec;
use crate::error::{EcsError, Result};
use crate::ids::{IdMap, Persist};
use crate::layout::{EntityGroup, Layout, field_prefix};
use crate::staged::Staged;

/// What one flush of one type did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeFlush {
    /// Components written.
    pub written: usize,
    /// Components removed from the file.
    pub removed: usize,
    /// Tables written (in part).
    pub tables: usize,
    /// Chunks of table columns written.
    pub table_chunks: usize,
}

/// Everything a type's flush needs besides the world.
pub(crate) struct FlushCx<'a> {
    /// The file's `/ecs` group: every read and write goes through it.
    pub(crate) layout: &'a Layout,
    pub(crate) ids: &'a IdMap,
    /// Entities persisted since the last flush: all their components are written.
    pub(crate) new_entities: &'a [Entity],
    /// Write everything (snapshots), not only what changed.
    pub(crate) full: bool,
    /// Components not written this tick (a reference to an entity that is not persisted):
    /// reported by the sync, retried by their type at every flush until written.
    pub(crate) skipped: &'a RefCell<Vec<Skip>>,
}

/// One component of one entity that a flush did not write.
pub(crate) struct Skip {
    pub(crate) id: u64,
    pub(crate) component: &'static str,
    pub(crate) error: h5pom_store::Error,
}

impl FlushCx<'_> {
    pub(crate) fn skip(&self, id: u64, component: &'static str, error: h5pom_store::Error) {
        self.skipped.borrow_mut().push(Skip {
            id,
            component,
            error,
        });
    }
}

/// True if writing failed on a reference the sync cannot store (the component is skipped for
/// this tick, not the flush failed).
pub(crate) fn is_unstorable_ref(e: &h5pom_store::Error) -> bool {
    matches!(e, h5pom_store::Error::UnpersistedRef { .. })
}

/// Everything a type's load needs besides the world.
pub(crate) struct LoadCx<'a> {
    pub(crate) layout: &'a Layout,
    /// Persistent ids in the file → the entities spawned for them: the entities to load.
    pub(crate) ids: &'a IdMap,
    /// What stored references resolve to: `ids`, and for a subset load also the world's
    /// persisted entities (by persistent id) outside the subset.
    pub(crate) refs: &'a (dyn RefMap + Sync),
    /// Entity groups to read (of the entities to load).
    pub(crate) groups: &'a [(u64, EntityGroup)],
    /// A subset load: the file ids to load (tables read only their rows).
    pub(crate) only: Option<&'a std::collections::HashSet<u64>>,
}

/// The sync of one component type (type-erased).
pub(crate) trait ComponentSync: Send + Sync {
    /// Reads removal events (cheap; runs every tick so that no event is missed).
    fn drain_removed(&mut self, world: &mut World);
    /// Entity `id` is no longer persisted (despawned, or `Persist` removed): its group is
    /// deleted by the caller; a table drops its row.
    fn entity_gone(&mut self, _id: u64) {}
    /// Writes what changed since the last flush; arrays go to `sink`, to be written by one
    /// parallel pass with every other type's arrays. A group-stored type only collects the
    /// components to write ([`take_dirty`](Self::take_dirty)): the sync writes them entity
    /// by entity, each entity group opened once for all its types.
    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        sink: &mut DeferredArrays<'w>,
    ) -> Result<TypeFlush>;
    /// The `(persistent id, entity)` pairs whose group-stored component the last `flush`
    /// found changed (none for tables).
    fn take_dirty(&mut self) -> Vec<(u64, Entity)> {
        Vec::new()
    }
    /// After the `write_entity` calls of a flush (or a failure on the way).
    fn dirty_written(&mut self) {}
    /// Writes entity `e`'s component into its group `g` (opened by the caller); false if
    /// the entity no longer has it.
    fn write_entity<'w>(
        &mut self,
        _world: &'w World,
        _e: Entity,
        _id: u64,
        _g: &EntityGroup,
        _cx: &FlushCx<'_>,
        _sink: &mut DeferredArrays<'w>,
    ) -> Result<bool> {
        Ok(false)
    }
    /// After a load into a synced world: what is in the world now is what the file holds, so
    /// nothing counts as changed.
    fn loaded(&mut self, world: &mut World);
    /// The file was replaced by a copy of the other slot, which is one commit ahead of the
    /// file this sync tracked (see `H5Sync`'s reader bypass). Change tracking stays (it covers
    /// every change since this slot's last write, a superset of what the copy lacks); what
    /// describes the old file's contents is forgotten.
    fn file_replaced(&mut self) {}
    /// Inserts the stored components into the world, for a type that does not
    /// [`stage`](Self::stage) them.
    fn load(&self, _world: &mut World, _cx: &LoadCx<'_>) -> Result<usize> {
        Ok(0)
    }
    /// Decodes the stored components without inserting them, for one insert per entity of
    /// all types together (`staged::insert_all`); `None` if the type inserts itself
    /// ([`load`](Self::load)).
    fn stage(
        &self,
        _world: &mut World,
        _cx: &LoadCx<'_>,
    ) -> Result<Option<Box<dyn crate::staged::Staged>>> {
        Ok(None)
    }
    /// Removes this type from entity `e` (before `e` is reloaded in place).
    fn unload(&self, world: &mut World, e: Entity);
    /// The ids of entities stored in this type's table (tables only).
    fn table_ids(&self, _layout: &Layout) -> Result<Vec<u64>> {
        Ok(Vec::new())
    }
}

type Changed_<C> =
    SystemState<Query<'static, 'static, (Entity, &'static C), (Changed<C>, With<Persist>)>>;
type All<C> = SystemState<Query<'static, 'static, (Entity, &'static C), With<Persist>>>;
type Removed<C> = SystemState<RemovedComponents<'static, 'static, C>>;

/// The change-tracking queries of one component type.
pub(crate) struct Queries<C: Component> {
    pub(crate) changed: Changed_<C>,
    pub(crate) all: All<C>,
    pub(crate) removed: Removed<C>,
}

impl<C: Component> Queries<C> {
    pub(crate) fn new(world: &mut World) -> Self {
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
    EcsError::Uninitialized
}

/// A component stored in each entity's group: fields as attributes `<Tag>.<field>`, arrays as
/// datasets, presence as the attribute `<Tag>`. The codec `K` knows `C`'s fields.
pub(crate) struct GroupSync<C: Component, K> {
    codec: K,
    /// The codec's [`Codec::columnar`].
    columnar: bool,
    tag: &'static str,
    q: Option<Queries<C>>,
    removed: Vec<Entity>,
    prefix: String,
    /// Ids whose presence attribute `<Tag>` is known to be written.
    present: HashSet<u64>,
    /// Entities whose component was skipped (see [`FlushCx::skipped`]): written again next
    /// flush whether or not they changed.
    retry: HashSet<Entity>,
    /// The components `flush` found to write, by persistent id, with their values when the
    /// type is columnar: written by `write_entity`.
    dirty: Vec<(u64, Entity)>,
    /// Columnar types: the values of the components in `dirty`, taken as rows by `flush`
    /// (the reference check), by persistent id.
    values: HashMap<u64, Vec<Value>>,
    /// Columnar types: the attribute names of the fields (`<Tag>.<field>`), in row order.
    names: Vec<String>,
    /// Columnar types: the kinds of the values last written to each entity's group in this
    /// file ([`kinds`]). When a write has the same kinds, every attribute exists with the
    /// right type, shape and `-type` marker, and is overwritten in place with no lookup.
    /// Forgotten with `present` (component removed, entity gone, file replaced).
    written: HashMap<u64, Box<[Kind]>>,
    /// Scratch row for `flush` (its names are recorded once).
    row: Row,
}

/// The kind of one stored value: its `Value` variant and, for a list, its length.
type Kind = (std::mem::Discriminant<Value>, usize);

fn kinds(values: &[Value]) -> Box<[Kind]> {
    values
        .iter()
        .map(|v| {
            let len = match v {
                Value::List(items) => items.len(),
                _ => 0,
            };
            (std::mem::discriminant(v), len)
        })
        .collect()
}

impl<C: Component, K: Codec<C>> GroupSync<C, K> {
    pub(crate) fn new(codec: K) -> Self {
        let tag = codec.tag();
        let columnar = codec.columnar();
        GroupSync {
            codec,
            columnar,
            tag,
            q: None,
            removed: Vec::new(),
            prefix: field_prefix(tag),
            present: HashSet::new(),
            retry: HashSet::new(),
            dirty: Vec::new(),
            values: HashMap::new(),
            names: Vec::new(),
            written: HashMap::new(),
            row: Row::default(),
        }
    }

    fn queries(&mut self, world: &mut World) -> &mut Queries<C> {
        self.q.get_or_insert_with(|| Queries::new(world))
    }
}

impl<C: Component, K: Codec<C>> ComponentSync for GroupSync<C, K> {
    fn drain_removed(&mut self, world: &mut World) {
        let q = self.queries(world);
        if let Ok(mut r) = q.removed.get_mut(world) {
            let events: Vec<Entity> = r.read().collect();
            self.removed.extend(events);
        }
    }

    fn entity_gone(&mut self, id: u64) {
        self.present.remove(&id);
        self.written.remove(&id);
    }

    fn file_replaced(&mut self) {
        // Presence attributes are rewritten for dirty entities; the copy holds the others'.
        self.present.clear();
        self.written.clear();
    }

    fn loaded(&mut self, world: &mut World) {
        let q = self.queries(world);
        let _ = q.changed.get(world);
        self.removed.clear();
    }

    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        _sink: &mut DeferredArrays<'w>,
    ) -> Result<TypeFlush> {
        let mut out = TypeFlush::default();
        // Components removed from entities that are still persisted.
        for e in std::mem::take(&mut self.removed) {
            let alive_persisted = world.get::<Persist>(e).is_some();
            if !alive_persisted || world.get::<C>(e).is_some() {
                continue; // despawned or un-persisted (handled by the caller), or re-added
            }
            if let Some(id) = cx.ids.id(e) {
                let g = cx.layout.entity(id)?;
                cx.layout.clear_component(&g, &self.prefix, self.tag)?;
                out.removed += 1;
                self.present.remove(&id);
                self.written.remove(&id);
            }
        }
        let q = self.q.as_mut().ok_or_else(uninit)?;
        let dirty: Vec<Entity> = if cx.full {
            q.all.get(world)?.iter().map(|(e, _)| e).collect()
        } else {
            let mut d: Vec<Entity> = q.changed.get(world)?.iter().map(|(e, _)| e).collect();
            d.extend(
                cx.new_entities
                    .iter()
                    .copied()
                    .chain(self.retry.drain())
                    .filter(|&e| world.get::<C>(e).is_some()),
            );
            d.sort_unstable();
            d.dedup();
            d
        };
        self.retry.clear();
        for e in dirty {
            let (Some(c), Some(id)) = (world.get::<C>(e), cx.ids.id(e)) else {
                continue;
            };
            // References first (nothing written): a component with a reference the file
            // cannot hold is skipped whole, so the file keeps its last value. A columnar
            // type is checked by taking its values as a row, kept for the write.
            let checked = if self.columnar {
                self.row.values.clear();
                match self.codec.write_row(c, &mut self.row, Some(cx.ids)) {
                    Ok(()) => {
                        // A columnar type's field names do not depend on its values (a
                        // table holds one column per name), so they are taken once.
                        if self.names.is_empty() {
                            self.names = (self.row.names.iter())
                                .map(|n| format!("{}{n}", self.prefix))
                                .collect();
                        }
                        if self.names.len() == self.row.values.len() {
                            self.values.insert(id, std::mem::take(&mut self.row.values));
                        }
                        Ok(())
                    }
                    Err(e) => {
                        // A failed save may have recorded only part of the field names.
                        self.row = Row::default();
                        Err(e)
                    }
                }
            } else {
                self.codec.check_refs(c, cx.ids)
            };
            if let Err(error) = checked
                && is_unstorable_ref(&error)
            {
                cx.skip(id, self.tag, error);
                self.retry.insert(e);
                continue;
            }
            self.dirty.push((id, e));
        }
        Ok(out)
    }

    fn take_dirty(&mut self) -> Vec<(u64, Entity)> {
        std::mem::take(&mut self.dirty)
    }

    fn dirty_written(&mut self) {
        // Values of components that were not written (their entity left the world).
        self.values.clear();
    }

    fn write_entity<'w>(
        &mut self,
        world: &'w World,
        e: Entity,
        id: u64,
        g: &EntityGroup,
        cx: &FlushCx<'_>,
        sink: &mut DeferredArrays<'w>,
    ) -> Result<bool> {
        let Some(c) = world.get::<C>(e) else {
            return Ok(false);
        };
        let err = comp_err(self.tag, id);
        if g.fresh || !self.present.contains(&id) {
            cx.layout.mark_present(g, self.tag).map_err(&err)?;
            self.present.insert(id);
        }
        if let Some(values) = self.values.remove(&id) {
            let kinds = kinds(&values);
            let same = !g.fresh && self.written.get(&id).is_some_and(|k| *k == kinds);
            // Forgotten while written: a failed write leaves the kinds unknown.
            self.written.remove(&id);
            for (name, v) in self.names.iter().zip(&values) {
                if same {
                    overwrite_attr(&g.group, &g.path, name, v)
                } else if g.fresh {
                    create_attr(&g.group, &g.path, name, v)
                } else {
                    set_attr(&g.group, &g.path, name, v)
                }
                .map_err(&err)?;
            }
            self.written.insert(id, kinds);
            return Ok(true);
        }
        let embed = Embed {
            prefix: Some(&self.prefix),
            refs: Some(cx.ids),
            fresh: g.fresh,
        };
        self.codec
            .write_fields(cx.layout.file(), &g.group, &g.path, c, embed, sink)
            .map_err(&err)?;
        Ok(true)
    }

    fn unload(&self, world: &mut World, e: Entity) {
        if let Ok(mut e) = world.get_entity_mut(e) {
            e.remove::<C>();
        }
    }

    fn stage(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<Option<Box<dyn Staged>>> {
        Ok(crate::staged::stage(world, self.decode(cx)?))
    }
}

impl<C: Component, K: Codec<C>> GroupSync<C, K> {
    /// The stored components of the entities to load, read from their groups.
    fn decode(&self, cx: &LoadCx<'_>) -> Result<Vec<(Entity, C)>> {
        let mut batch = Vec::new();
        for (id, g) in cx.groups {
            let err = comp_err(self.tag, *id);
            if !cx.layout.has_component(g, self.tag).map_err(&err)? {
                continue;
            }
            let Some(e) = cx.ids.entity(*id) else {
                continue;
            };
            let embed = Embed {
                prefix: Some(&self.prefix),
                refs: Some(cx.refs),
                fresh: false,
            };
            let c: C = self
                .codec
                .read_fields(cx.layout.file(), &g.group, &g.path, embed)
                .map_err(&err)?;
            batch.push((e, c));
        }
        Ok(batch)
    }
}
