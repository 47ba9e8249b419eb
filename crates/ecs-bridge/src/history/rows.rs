//! The history of a component type: a table of stable rows (`[step, entity]` per field) and,
//! for array fields, one frame series group per entity.

use std::collections::HashSet;

use bevy_ecs::hierarchy::ChildOf;
use h5pom_store::table::ColumnTable;
use h5pom_store::{
    CapturedArray, Object, Row, RowRef, Value, capture_row, read_row, read_row_with_frames,
};
use rustc_hash::FxHashMap;

use crate::codec::DeriveCodec;
use crate::component::Queries;

use super::*;
use h5pom_store::reexports::hdf5::Group;

use crate::error::{EcsError, Result};
use crate::ids::IdMap;

/// Where a decoded row's array fields come from: frame `.2` of the series in `.0` (at `.1`).
pub(crate) type Frames<'a> = Option<(&'a Group, &'a str, usize)>;

/// How a component type becomes a row (plus array frames) and back.
pub(crate) trait RowCodec<C>: Send + Sync + 'static {
    /// Appends `c`'s scalar fields to `row` and its arrays to `arrays`; false if `c` is not
    /// stored (a link to an entity that is not persisted).
    fn encode<'d>(
        &self,
        c: &'d C,
        ids: &IdMap,
        row: &mut Row,
        arrays: &mut Vec<CapturedArray<'d>>,
    ) -> h5pom_store::Result<bool>;
    fn decode(&self, row: RowRef<'_>, ids: &IdMap, frames: Frames<'_>) -> h5pom_store::Result<C>;
}

/// Types deriving `Object`: the derive's own row code does the work.
impl<C: Object> RowCodec<C> for DeriveCodec {
    fn encode<'d>(
        &self,
        c: &'d C,
        ids: &IdMap,
        row: &mut Row,
        arrays: &mut Vec<CapturedArray<'d>>,
    ) -> h5pom_store::Result<bool> {
        capture_row(c, row, Some(ids), arrays).map(|()| true)
    }
    fn decode(&self, row: RowRef<'_>, ids: &IdMap, frames: Frames<'_>) -> h5pom_store::Result<C> {
        match frames {
            Some((g, path, sample)) => read_row_with_frames(row, Some(ids), g, path, sample),
            None => read_row(row, Some(ids)),
        }
    }
}

/// `ChildOf`: the parent's persistent id, in the field `parent`.
pub(crate) struct ChildOfCodec;

impl RowCodec<ChildOf> for ChildOfCodec {
    fn encode<'d>(
        &self,
        c: &'d ChildOf,
        ids: &IdMap,
        row: &mut Row,
        _arrays: &mut Vec<CapturedArray<'d>>,
    ) -> h5pom_store::Result<bool> {
        let Some(parent) = ids.id(c.parent()) else {
            return Ok(false);
        };
        if row.names.is_empty() {
            row.names.push("parent".into());
        }
        row.values.push(Value::U64(parent));
        Ok(true)
    }
    fn decode(
        &self,
        row: RowRef<'_>,
        ids: &IdMap,
        _frames: Frames<'_>,
    ) -> h5pom_store::Result<ChildOf> {
        let missing = |reason: String| h5pom_store::Error::Corrupt {
            path: format!("/ecs/{HISTORY}/{}", crate::CHILD_OF_TAG),
            reason,
        };
        let i = row
            .names
            .iter()
            .position(|n| n == "parent")
            .ok_or_else(|| missing("no parent column".into()))?;
        match &row.values[i] {
            Some(Value::U64(p)) => ids
                .entity(*p)
                .map(ChildOf)
                .ok_or_else(|| missing(format!("parent {p} is not in the file"))),
            other => Err(missing(format!("parent is {other:?}"))),
        }
    }
}

/// The history of a component type as a table of stable rows.
pub(crate) struct HistoryRows<C: Component, K> {
    tag: &'static str,
    q: Option<Queries<C>>,
    table: ColumnTable,
    slot_of: FxHashMap<u64, usize>,
    scratch: Row,
    names: Vec<String>,
    removed: Vec<Entity>,
    gone: Vec<u64>,
    /// Samples in the file (`None`: not known yet, read at the first append).
    samples: Option<usize>,
    /// The next sample records every instance (first sample, after a load).
    everything: bool,
    /// Rows of the stored history not yet in memory (their field names are known only once
    /// a component was encoded).
    pending: Vec<u64>,
    /// Samples of each entity's array series (`/ecs/history/<Tag>/<id>`).
    arr_samples: FxHashMap<u64, usize>,
    codec: K,
}

impl<C: Component, K: RowCodec<C>> HistoryRows<C, K> {
    pub(crate) fn new(tag: &'static str, codec: K) -> Self {
        HistoryRows {
            tag,
            q: None,
            table: ColumnTable::new(ENTITY),
            slot_of: FxHashMap::default(),
            scratch: Row::default(),
            names: Vec::new(),
            removed: Vec::new(),
            gone: Vec::new(),
            samples: None,
            everything: true,
            pending: Vec::new(),
            arr_samples: FxHashMap::default(),
            codec,
        }
    }

    /// Sets the row of `id` to `values` (+ present), appending a row for a new entity.
    fn put(&mut self, id: u64, present: bool) -> Result<()> {
        let err = |source: h5pom_store::table::TableError| EcsError::Component {
            entity: id,
            component: self.tag,
            source: h5pom_store::Error::Table {
                path: format!("/ecs/{HISTORY}/{}", self.tag),
                source: Box::new(source),
            },
        };
        if self.names.is_empty() {
            self.names = self
                .scratch
                .names
                .iter()
                .map(|n| series_name(n).into_owned())
                .collect();
            self.names.push(PRESENT.into());
            let mut absent = vec![Value::None; self.names.len() - 1];
            absent.push(Value::U8(0));
            for old in std::mem::take(&mut self.pending) {
                let row = self.table.push(old, &self.names, &absent).map_err(err)?;
                self.slot_of.insert(old, row);
            }
        }
        let mut values = std::mem::take(&mut self.scratch.values);
        values.push(Value::U8(u8::from(present)));
        let r = match self.slot_of.get(&id) {
            Some(&row) => self.table.set(row, &self.names, &values).map_err(err),
            None => match self.table.push(id, &self.names, &values) {
                Ok(row) => {
                    self.slot_of.insert(id, row);
                    Ok(())
                }
                Err(e) => Err(err(e)),
            },
        };
        values.clear();
        self.scratch.values = values;
        r
    }

    /// Appends the array fields of entity `id` as the next sample of its series group
    /// `/ecs/history/<Tag>/<id>` (with its own `step`, `time`, `tick`).
    fn append_arrays(
        &mut self,
        id: u64,
        arrays: &[CapturedArray<'_>],
        cx: &HistoryCx<'_>,
    ) -> Result<()> {
        let (g, path) = cx.group(self.tag)?;
        let name = id.to_string();
        let spath = format!("{path}/{name}");
        let sub = if g.link_exists(&name) {
            g.group(&name).map_err(h5("open group", &spath))?
        } else {
            g.create_group(&name).map_err(h5("create group", &spath))?
        };
        let j = match self.arr_samples.get(&id) {
            Some(&j) => j,
            None if sub.link_exists(STEP) => sub
                .dataset(STEP)
                .map_err(h5("open dataset", format!("{spath}/{STEP}")))?
                .shape()[0],
            None => 0,
        };
        let mut created = Vec::new();
        for a in arrays {
            let series = series_name(&a.name);
            if !sub.link_exists(&series) {
                created.push(series.to_string());
                created.push(format!("{series}{}", h5pom_store::series::SHAPE_SUFFIX));
            }
            h5pom_store::series::append_frame(
                cx.file,
                &sub,
                &spath,
                &series,
                j,
                a.dtype,
                &a.shape,
                &a.bytes,
                Some(&h5pom_store::series::array_chunk(
                    cx.file, &a.shape, a.dtype,
                )),
            )
            .map_err(|source| EcsError::Component {
                entity: id,
                component: self.tag,
                source,
            })?;
            axis_scales(&sub, &spath, &series)?;
        }
        cx.stamp(&sub, &spath, j)?;
        attach(&sub, &spath, &created, j == 0, false)?;
        self.arr_samples.insert(id, j + 1);
        Ok(())
    }

    /// Marks `id` absent, keeping its last values.
    fn absent(&mut self, id: u64) -> Result<()> {
        let Some(&row) = self.slot_of.get(&id) else {
            return Ok(());
        };
        let k = self.names.len() - 1;
        self.scratch.values.clear();
        for j in 0..k {
            let v = self.table.value(row, j).unwrap_or(Value::None);
            self.scratch.values.push(v);
        }
        self.put(id, false)
    }

    /// Reads the rows of the stored history (after a resume), so that they keep their slots.
    fn adopt_stored(&mut self, g: &Group, path: &str) -> Result<usize> {
        if !g.link_exists(STEP) {
            return Ok(0);
        }
        let samples = g
            .dataset(STEP)
            .map_err(h5("open dataset", format!("{path}/{STEP}")))?
            .shape()[0];
        if g.link_exists(ENTITY) {
            self.pending = g
                .dataset(ENTITY)
                .and_then(|d| d.read_raw())
                .map_err(h5("read dataset", format!("{path}/{ENTITY}")))?;
        }
        Ok(samples)
    }
}

impl<C: Component, K: RowCodec<C>> HistorySync for HistoryRows<C, K> {
    fn tag(&self) -> &'static str {
        self.tag
    }

    fn drain(&mut self, world: &mut World) {
        let q = self.q.get_or_insert_with(|| Queries::new(world));
        if let Ok(mut r) = q.removed.get_mut(world) {
            self.removed.extend(r.read());
        }
    }

    fn entity_gone(&mut self, id: u64) {
        self.gone.push(id);
    }

    fn loaded(&mut self, world: &mut World) {
        let q = self.q.get_or_insert_with(|| Queries::new(world));
        let _ = q.changed.get(world);
        self.removed.clear();
        self.gone.clear();
        self.everything = true;
    }

    fn append(&mut self, world: &World, cx: &HistoryCx<'_>) -> Result<bool> {
        let q = self.q.as_mut().ok_or(EcsError::Uninitialized)?;
        let mut dirty: Vec<(Entity, &C)> = if self.everything {
            q.all.get(world)?.into_iter().collect()
        } else {
            q.changed.get(world)?.into_iter().collect()
        };
        if self.everything {
            let _ = q.changed.get(world);
        }
        dirty.extend(
            cx.new_entities
                .iter()
                .filter_map(|&e| world.get::<C>(e).map(|c| (e, c))),
        );
        dirty.sort_unstable_by_key(|(e, _)| *e);
        dirty.dedup_by_key(|(e, _)| *e);
        let mut gone = std::mem::take(&mut self.gone);
        for e in std::mem::take(&mut self.removed) {
            if world.get::<C>(e).is_none()
                && let Some(id) = cx.ids.id(e)
            {
                gone.push(id);
            }
        }
        let first = self.samples.is_none();
        if !cx.every && dirty.is_empty() && gone.is_empty() && !(self.everything && first) {
            self.everything = false;
            return Ok(false);
        }
        let samples = match (self.samples, cx.existing(self.tag)?) {
            (Some(n), _) => n,
            (None, Some((g, path))) => self.adopt_stored(&g, &path)?,
            (None, None) => 0,
        };
        // Everything known to be absent unless the world says otherwise.
        if self.everything {
            let present: HashSet<u64> = dirty.iter().filter_map(|(e, _)| cx.ids.id(*e)).collect();
            let stale: Vec<u64> = self
                .table
                .keys()
                .iter()
                .copied()
                .filter(|id| !present.contains(id))
                .collect();
            gone.extend(stale);
        }
        // Ids gone and back in the same tick (a replacing load, a rollback) stay present.
        let mut back = HashSet::new();
        for (e, c) in dirty {
            let Some(id) = cx.ids.id(e) else { continue };
            self.scratch.values.clear();
            let mut arrays = Vec::new();
            let stored = match self.codec.encode(c, cx.ids, &mut self.scratch, &mut arrays) {
                Ok(stored) => stored,
                // Skipped by the run file's flush too (`DanglingRefs`): the history keeps
                // the entity's last sample of the component.
                Err(e) if crate::component::is_unstorable_ref(&e) => {
                    // (A failed save may leave part of the field names.)
                    self.scratch = Row::default();
                    continue;
                }
                Err(source) => {
                    return Err(EcsError::Component {
                        entity: id,
                        component: self.tag,
                        source,
                    });
                }
            };
            if stored {
                back.insert(id);
                self.put(id, true)?;
                if !arrays.is_empty() {
                    self.append_arrays(id, &arrays, cx)?;
                }
            } else {
                gone.push(id);
            }
        }
        gone.retain(|id| !back.contains(id));
        for id in gone {
            if !self.names.is_empty() {
                self.absent(id)?;
            }
        }
        if self.names.is_empty() {
            // No instance was ever recorded: nothing to sample yet.
            self.everything = false;
            self.samples = Some(samples);
            return Ok(false);
        }
        let (g, path) = cx.group(self.tag)?;
        let w = self
            .table
            .append_frame(cx.file, &g, &path, samples)
            .map_err(|source| EcsError::Table {
                component: self.tag.into(),
                source: Box::new(source),
            })?;
        cx.stamp(&g, &path, samples)?;
        attach(&g, &path, &w.created, samples == 0, true)?;
        self.samples = Some(samples + 1);
        self.everything = false;
        Ok(true)
    }

    fn load_sample(&self, world: &mut World, cx: &SampleCx<'_>) -> Result<usize> {
        let mut t = h5pom_store::table::read_frame(cx.file, cx.group, cx.path, ENTITY, cx.sample)
            .map_err(|source| EcsError::Table {
            component: self.tag.into(),
            source: Box::new(source),
        })?;
        for n in &mut t.names {
            *n = field_name(n).to_owned();
        }
        let present = t.names.iter().position(|n| n == PRESENT);
        let mut batch = Vec::with_capacity(t.keys.len());
        for i in 0..t.keys.len() {
            let id = t.keys[i];
            let row = t.row(i);
            let here = present.is_none_or(|p| matches!(row.values[p], Some(Value::U8(1))));
            if !here {
                continue;
            }
            let Some(e) = cx.ids.entity(id) else { continue };
            let err = |source| EcsError::Component {
                entity: id,
                component: self.tag,
                source,
            };
            let name = id.to_string();
            let c = if cx.group.link_exists(&name) {
                let spath = format!("{}/{name}", cx.path);
                let sub = cx.group.group(&name).map_err(h5("open group", &spath))?;
                let j = entity_sample(&sub, &spath, cx.step, cx.committed)?;
                self.codec
                    .decode(row, cx.ids, j.map(|j| (&sub, spath.as_str(), j)))
                    .map_err(err)?
            } else {
                self.codec.decode(row, cx.ids, None).map_err(err)?
            };
            batch.push((e, c));
        }
        let n = batch.len();
        world.insert_batch(batch);
        Ok(n)
    }
}
