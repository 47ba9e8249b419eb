//! The parent/child hierarchy (`ChildOf`) as the column table `/ecs/tables/ChildOf`.

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;

use crate::component::{ComponentSync, FlushCx, LoadCx, TypeFlush, table_group};
use crate::error::{EcsError, Result};
use crate::ids::Persist;
use crate::table::{read_table, write_table};

/// The tag of the hierarchy table.
pub const CHILD_OF_TAG: &str = "ChildOf";

type Q = SystemState<Query<'static, 'static, (Entity, &'static ChildOf), With<Persist>>>;
type Changed_ = SystemState<Query<'static, 'static, (), (Changed<ChildOf>, With<Persist>)>>;
type Removed = SystemState<bevy_ecs::lifecycle::RemovedComponents<'static, 'static, ChildOf>>;

pub(crate) struct HierarchySync {
    q: Option<(Q, Changed_, Removed)>,
    dirty: bool,
}

impl HierarchySync {
    pub(crate) fn new() -> Self {
        HierarchySync {
            q: None,
            dirty: true,
        }
    }
}

impl ComponentSync for HierarchySync {
    fn drain_removed(&mut self, world: &mut World) {
        let q = self.q.get_or_insert_with(|| {
            (
                SystemState::new(world),
                SystemState::new(world),
                SystemState::new(world),
            )
        });
        if let Ok(mut r) = q.2.get_mut(world) {
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
        let q = self.q.get_or_insert_with(|| {
            (
                SystemState::new(world),
                SystemState::new(world),
                SystemState::new(world),
            )
        });
        let _ = q.1.get(world);
        self.dirty = false;
    }

    fn flush<'w>(
        &mut self,
        world: &'w World,
        cx: &FlushCx<'_>,
        _sink: &mut h5pom_store::DeferredArrays<'w>,
    ) -> Result<TypeFlush> {
        let q = self.q.as_mut().ok_or_else(crate::component::uninit)?;
        let err = |e: bevy_ecs::system::SystemParamValidationError| EcsError::Table {
            component: CHILD_OF_TAG.into(),
            reason: e.to_string(),
        };
        let changed = q.1.get(world).map_err(err)?.iter().next().is_some();
        let new = cx
            .new_entities
            .iter()
            .any(|&e| world.get::<ChildOf>(e).is_some());
        if !(self.dirty || changed || new || cx.full) {
            return Ok(TypeFlush::default());
        }
        let mut ids = Vec::new();
        let mut row = h5pom_store::Row::default();
        row.names.push("parent".into());
        for (e, child_of) in q.0.get(world).map_err(err)?.iter() {
            // Links to entities that are not persisted are not stored.
            if let (Some(id), Some(parent)) = (cx.ids.id(e), cx.ids.id(child_of.parent())) {
                ids.push(id);
                row.values.push(h5pom_store::Value::U64(parent));
            }
        }
        let g = table_group(cx.ecs, CHILD_OF_TAG, true)?.ok_or_else(|| EcsError::Table {
            component: CHILD_OF_TAG.into(),
            reason: "cannot create table".into(),
        })?;
        write_table(&g, CHILD_OF_TAG, &ids, &row)?;
        self.dirty = false;
        Ok(TypeFlush {
            written: ids.len(),
            removed: 0,
            tables: 1,
        })
    }

    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<usize> {
        let Some(g) = table_group(cx.ecs, CHILD_OF_TAG, false)? else {
            return Ok(0);
        };
        let t = read_table(&g, CHILD_OF_TAG)?;
        let col = t
            .names
            .iter()
            .position(|n| n == "parent")
            .ok_or_else(|| EcsError::Table {
                component: CHILD_OF_TAG.into(),
                reason: "no parent column".into(),
            })?;
        let k = t.names.len();
        let mut batch = Vec::with_capacity(t.ids.len());
        for (i, id) in t.ids.iter().enumerate() {
            let parent = match &t.values[i * k + col] {
                Some(h5pom_store::Value::U64(p)) => *p,
                other => {
                    return Err(EcsError::Table {
                        component: CHILD_OF_TAG.into(),
                        reason: format!("parent of {id} is {other:?}"),
                    });
                }
            };
            let (Some(e), Some(p)) = (cx.ids.entity(*id), cx.ids.entity(parent)) else {
                return Err(EcsError::Table {
                    component: CHILD_OF_TAG.into(),
                    reason: format!("entity {id} or its parent {parent} is not in the file"),
                });
            };
            batch.push((e, ChildOf(p)));
        }
        let n = batch.len();
        world.insert_batch(batch);
        Ok(n)
    }

    fn table_ids(&self, ecs: &h5pom_store::reexports::hdf5::Group) -> Result<Vec<u64>> {
        match table_group(ecs, CHILD_OF_TAG, false)? {
            Some(g) => crate::table::read_ids(&g, CHILD_OF_TAG),
            None => Ok(Vec::new()),
        }
    }
}
