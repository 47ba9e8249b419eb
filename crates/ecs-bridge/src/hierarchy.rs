//! The parent/child hierarchy (`ChildOf`) as the column table `/ecs/tables/ChildOf`.

use std::collections::HashSet;

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use h5pom_store::Value;

use crate::component::{ComponentSync, FlushCx, LoadCx, TypeFlush, uninit};
use crate::error::{EcsError, Result};
use crate::ids::Persist;
use crate::layout::Layout;
use crate::table::TableRows;

/// The tag of the hierarchy table.
pub const CHILD_OF_TAG: &str = "ChildOf";
/// Its one column: the parent's persistent id.
pub(crate) const PARENT: &str = "parent";

type Q = SystemState<Query<'static, 'static, (Entity, &'static ChildOf), With<Persist>>>;
type Changed_ = SystemState<Query<'static, 'static, (), (Changed<ChildOf>, With<Persist>)>>;
type Removed = SystemState<bevy_ecs::lifecycle::RemovedComponents<'static, 'static, ChildOf>>;

pub(crate) struct HierarchySync {
    q: Option<(Q, Changed_, Removed)>,
    /// Something changed that the changed query does not show (a removal, a despawn).
    dirty: bool,
    rows: TableRows,
    names: Vec<String>,
}

impl HierarchySync {
    pub(crate) fn new() -> Self {
        HierarchySync {
            q: None,
            dirty: true,
            rows: TableRows::new(CHILD_OF_TAG, &[PARENT.to_owned()]),
            names: vec![PARENT.to_owned()],
        }
    }

    fn queries(&mut self, world: &mut World) -> &mut (Q, Changed_, Removed) {
        self.q.get_or_insert_with(|| {
            (
                SystemState::new(world),
                SystemState::new(world),
                SystemState::new(world),
            )
        })
    }
}

fn table_err(reason: String) -> EcsError {
    EcsError::Table {
        component: CHILD_OF_TAG.into(),
        source: Box::new(h5pom_store::Error::Corrupt {
            path: format!("/ecs/tables/{CHILD_OF_TAG}"),
            reason,
        }),
    }
}

impl ComponentSync for HierarchySync {
    fn drain_removed(&mut self, world: &mut World) {
        let q = self.queries(world);
        let removed = match q.2.get_mut(world) {
            Ok(mut r) => {
                let any = r.read().next().is_some();
                r.clear();
                any
            }
            Err(_) => false,
        };
        self.dirty |= removed;
    }

    fn entity_gone(&mut self, _id: u64) {
        // Its own link and every link to it as a parent go.
        self.dirty = true;
    }

    fn file_replaced(&mut self) {
        // The copy's row order is not this map's: recompute and rewrite the links.
        self.rows.reset();
        self.dirty = true;
    }

    fn loaded(&mut self, world: &mut World) {
        let q = self.queries(world);
        let _ = q.1.get(world);
        self.dirty = false;
        self.rows.reset();
    }

    /// Links change rarely: on any change the wanted rows are recomputed from the world and
    /// compared with the table in memory, so only the chunks of changed rows are written.
    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        _sink: &mut h5pom_store::DeferredArrays<'w>,
    ) -> Result<TypeFlush> {
        let q = self.q.as_mut().ok_or_else(uninit)?;
        let changed = q.1.get(world)?.iter().next().is_some();
        let new = cx
            .new_entities
            .iter()
            .any(|&e| world.get::<ChildOf>(e).is_some());
        if !(self.dirty || changed || new || cx.full) {
            return Ok(TypeFlush::default());
        }
        if !self.rows.is_live() || cx.full {
            self.rows.reset();
        }
        let links: Vec<(u64, u64)> =
            q.0.get(world)?
                .iter()
                // Links to entities that are not persisted are not stored.
                .filter_map(|(e, c)| Some((cx.ids.id(e)?, cx.ids.id(c.parent())?)))
                .collect();
        let keep: HashSet<u64> = links.iter().map(|l| l.0).collect();
        self.rows.retain(&keep);
        for (id, parent) in &links {
            self.rows.upsert(*id, &self.names, &[Value::U64(*parent)])?;
        }
        self.dirty = false;
        let mut out = TypeFlush {
            written: links.len(),
            ..TypeFlush::default()
        };
        if let Some(w) = self.rows.write(cx.layout)? {
            out.tables = 1;
            out.table_chunks = w.chunks;
        }
        Ok(out)
    }

    fn unload(&self, world: &mut World, e: Entity) {
        if let Ok(mut e) = world.get_entity_mut(e) {
            e.remove::<ChildOf>();
        }
    }

    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<usize> {
        let Some(t) = TableRows::read(cx.layout, CHILD_OF_TAG, cx.only)? else {
            return Ok(0);
        };
        if t.keys.is_empty() {
            return Ok(0);
        }
        let col = t
            .names
            .iter()
            .position(|n| n == PARENT)
            .ok_or_else(|| table_err("no parent column".into()))?;
        let k = t.names.len();
        let mut batch = Vec::with_capacity(t.keys.len());
        for (i, id) in t.keys.iter().enumerate() {
            let parent = match &t.values[i * k + col] {
                Some(Value::U64(p)) => *p,
                other => return Err(table_err(format!("parent of {id} is {other:?}"))),
            };
            let Some(e) = cx.ids.entity(*id) else {
                return Err(table_err(format!("entity {id} is not in the file")));
            };
            let p = match cx.ids.entity(parent) {
                Some(p) => p,
                // A subset load: the parent is in the world already, or not loaded (the
                // entity loads as a root).
                None if cx.only.is_some() => {
                    match cx.refs.resolve(parent).and_then(Entity::try_from_bits) {
                        Some(p) => p,
                        None => continue,
                    }
                }
                None => {
                    return Err(table_err(format!(
                        "the parent {parent} of entity {id} is not in the file"
                    )));
                }
            };
            batch.push((e, ChildOf(p)));
        }
        let n = batch.len();
        world.insert_batch(batch);
        Ok(n)
    }

    fn table_ids(&self, layout: &Layout) -> Result<Vec<u64>> {
        TableRows::read_ids(layout, CHILD_OF_TAG)
    }
}
