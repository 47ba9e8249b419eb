//! History mode: every flush appends one sample per changed component type under
//! `/ecs/history/<Tag>` (see `docs/FORMAT.md`, "History").
//!
//! Per component type, the history is a table whose rows are the entities that ever had the
//! component, in the order they first had it (row `i` is the same entity in every sample):
//! each field is a `[step, entity]` dataset, `entity-present` (`uint8`) says which entities
//! had the component at that sample, `entity` is the coordinate of the rows, and `step`,
//! `time`, `tick` (one value per sample) the coordinate of the samples. A type whose
//! components did not change adds no sample. Resources are series of their fields. The
//! history lives in a sidecar file written in place and append-only; a sample counts only
//! once the tick it was written in is committed (`tick` ≤ the run file's `/ecs@tick`).

use std::collections::HashSet;

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use h5pom_store::reexports::hdf5::{self, Group};
use h5pom_store::series::{append_value, attach_dimension_scale, set_dimension_scale};
use h5pom_store::table::ColumnTable;
use h5pom_store::{
    CapturedArray, File, Object, Row, RowRef, Value, capture_row, read_row, read_row_with_frames,
    write_row,
};
use rustc_hash::FxHashMap;

mod h5md;

use h5md::H5mdRun;
pub use h5md::{H5md, ParticleGroup};

use crate::component::Queries;
use crate::error::{EcsError, Result};
use crate::ids::IdMap;

/// The history group, under `/ecs`.
pub const HISTORY: &str = "history";
/// The sample coordinate of a history group (`int64`).
pub const STEP: &str = "step";
/// Simulation time of each sample (`float64`).
pub const TIME: &str = "time";
/// The tick (flush) that wrote each sample (`uint64`).
pub const TICK: &str = "tick";
/// The row coordinate of a history table (`uint64` persistent ids).
pub const ENTITY: &str = "entity";
/// Which rows hold the component at a sample (`uint8`, 1 = present).
pub const PRESENT: &str = "entity-present";
/// The history group of the entity index (which entities exist at each sample).
pub const INDEX_TAG: &str = "index";
/// Suffix of a field stored under another name because its name is one of the history's own
/// (`step`, `time`, `tick`, `entity`, `present`): field `time` is the series `time-field`.
pub const FIELD_SUFFIX: &str = "-field";

/// The series name of field `name` (see [`FIELD_SUFFIX`]).
pub fn series_name(name: &str) -> std::borrow::Cow<'_, str> {
    if [STEP, TIME, TICK, ENTITY, RES_PRESENT].contains(&name) {
        format!("{name}{FIELD_SUFFIX}").into()
    } else {
        name.into()
    }
}

/// The field name of series `name` (the inverse of [`series_name`]).
fn field_name(name: &str) -> &str {
    name.strip_suffix(FIELD_SUFFIX).unwrap_or(name)
}

/// Reads a sample's step and time from the world.
type StepTime = dyn Fn(&World) -> (i64, f64) + Send + Sync;

/// What a sync records in its history. Opt in with
/// [`H5Sync::keep_history`](crate::H5Sync::keep_history).
pub struct History {
    pub(crate) step_time: Box<StepTime>,
    pub(crate) skip: HashSet<&'static str>,
    pub(crate) h5md: Option<H5md>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("skip", &self.skip).finish()
    }
}

impl History {
    /// Every registered component and resource, with step = the flush's tick and time = NaN.
    pub fn new() -> Self {
        History {
            step_time: Box::new(|_| (-1, f64::NAN)),
            skip: HashSet::new(),
            h5md: None,
        }
    }

    /// Where a sample's `step` and `time` come from (e.g. the simulation's step and clock
    /// resources). A negative step means "the tick".
    pub fn step_time(mut self, f: impl Fn(&World) -> (i64, f64) + Send + Sync + 'static) -> Self {
        self.step_time = Box::new(f);
        self
    }

    /// Keeps no history of `T` (e.g. a constant component).
    pub fn skip<T: Object>(mut self) -> Self {
        self.skip.insert(T::TYPE_TAG);
        self
    }

    /// Also presents the history as an H5MD 1.1 file (`/h5md`, `/particles`, `/observables`,
    /// hard links to the history's own datasets), for particle tools such as MDAnalysis.
    pub fn h5md(mut self, view: H5md) -> Self {
        self.h5md = Some(view);
        self
    }

    /// Keeps no history of the type with tag `tag`.
    pub fn skip_tag(mut self, tag: &'static str) -> Self {
        self.skip.insert(tag);
        self
    }
}

/// Everything an append needs besides the world.
pub(crate) struct HistoryCx<'a> {
    pub(crate) file: &'a File,
    /// `/ecs/history` of the history file.
    pub(crate) root: &'a Group,
    pub(crate) ids: &'a IdMap,
    pub(crate) new_entities: &'a [Entity],
    pub(crate) step: i64,
    pub(crate) time: f64,
    pub(crate) tick: u64,
}

fn h5(op: &'static str, path: impl Into<String>) -> impl FnOnce(hdf5::Error) -> EcsError {
    let path = path.into();
    move |source| EcsError::Store(h5pom_store::Error::Hdf5 { op, path, source })
}

impl HistoryCx<'_> {
    /// `/ecs/history/<tag>` if it exists.
    fn existing(&self, tag: &str) -> Result<Option<(Group, String)>> {
        let path = format!("/ecs/{HISTORY}/{tag}");
        if !self.root.link_exists(tag) {
            return Ok(None);
        }
        let g = self.root.group(tag).map_err(h5("open group", &path))?;
        Ok(Some((g, path)))
    }

    /// `/ecs/history/<tag>`, created if missing.
    fn group(&self, tag: &str) -> Result<(Group, String)> {
        let path = format!("/ecs/{HISTORY}/{tag}");
        let g = if self.root.link_exists(tag) {
            self.root.group(tag).map_err(h5("open group", &path))?
        } else {
            self.root
                .create_group(tag)
                .map_err(h5("create group", &path))?
        };
        Ok((g, path))
    }

    /// Appends `step`, `time`, `tick` as sample `index` of `g`.
    fn stamp(&self, g: &Group, path: &str, index: usize) -> Result<()> {
        let step = if self.step < 0 {
            self.tick as i64
        } else {
            self.step
        };
        append_value(g, path, STEP, index, &Value::I64(step))?;
        append_value(g, path, TIME, index, &Value::F64(self.time))?;
        append_value(g, path, TICK, index, &Value::U64(self.tick))?;
        Ok(())
    }
}

/// Makes `step` (and `entity`, if `rows`) dimension scales and attaches them to `created`.
fn attach(g: &Group, path: &str, created: &[String], first: bool, rows: bool) -> Result<()> {
    let ds = |name: &str| {
        g.dataset(name)
            .map_err(h5("open dataset", format!("{path}/{name}")))
    };
    let step = ds(STEP)?;
    let entity = if rows { Some(ds(ENTITY)?) } else { None };
    if first {
        set_dimension_scale(&step, path, STEP)?;
        if let Some(e) = &entity {
            set_dimension_scale(e, path, ENTITY)?;
        }
        for name in [TIME, TICK] {
            attach_dimension_scale(&ds(name)?, path, &step, 0)?;
        }
    }
    for name in created {
        if name == ENTITY || name == STEP {
            continue;
        }
        let d = ds(name)?;
        attach_dimension_scale(&d, path, &step, 0)?;
        if let Some(e) = &entity
            && d.ndim() == 2
        {
            attach_dimension_scale(&d, path, e, 1)?;
        }
    }
    Ok(())
}

/// The history of one type (type-erased).
pub(crate) trait HistorySync: Send + Sync {
    /// The type's tag.
    fn tag(&self) -> &'static str;
    /// Reads removal events (every tick).
    fn drain(&mut self, world: &mut World);
    /// Entity `id` is no longer persisted.
    fn entity_gone(&mut self, _id: u64) {}
    /// Appends a sample if the type changed since the last one; true if it did.
    fn append(&mut self, world: &World, cx: &HistoryCx<'_>) -> Result<bool>;
    /// After a load: the world is what the file holds; the next sample records everything.
    fn loaded(&mut self, world: &mut World);
    /// Inserts the type as of sample `sample` of its history group.
    fn load_sample(&self, world: &mut World, cx: &SampleCx<'_>) -> Result<usize>;
    /// True for resources.
    fn is_resource(&self) -> bool {
        false
    }
}

/// Reading one sample of one history group.
pub(crate) struct SampleCx<'a> {
    pub(crate) file: &'a File,
    pub(crate) group: &'a Group,
    pub(crate) path: &'a str,
    pub(crate) sample: usize,
    /// Persistent ids in the file → entities of the world.
    pub(crate) ids: &'a IdMap,
    /// The step being loaded.
    pub(crate) step: i64,
    /// The run file's committed tick.
    pub(crate) committed: u64,
}

/// The last committed sample of an entity's series group at or before `step`.
fn entity_sample(g: &Group, path: &str, step: i64, committed: u64) -> Result<Option<usize>> {
    let n = committed_samples(g, path, committed)?;
    if n == 0 {
        return Ok(None);
    }
    let steps: Vec<i64> = g
        .dataset(STEP)
        .and_then(|d| d.read_raw())
        .map_err(h5("read dataset", format!("{path}/{STEP}")))?;
    Ok(steps.iter().take(n).rposition(|&s| s <= step))
}

/// Where a decoded row's array fields come from: frame `.2` of the series in `.0` (at `.1`).
pub(crate) type Frames<'a> = Option<(&'a Group, &'a str, usize)>;

/// How a component type becomes a row (plus array frames) and back.
pub(crate) trait RowCodec<C>: Send + Sync + 'static {
    /// Appends `c`'s scalar fields to `row` and its arrays to `arrays`; false if `c` is not
    /// stored (a link to an entity that is not persisted).
    fn encode<'d>(
        c: &'d C,
        ids: &IdMap,
        row: &mut Row,
        arrays: &mut Vec<CapturedArray<'d>>,
    ) -> h5pom_store::Result<bool>;
    fn decode(row: RowRef<'_>, ids: &IdMap, frames: Frames<'_>) -> h5pom_store::Result<C>;
}

/// Components that are [`Object`]s.
pub(crate) struct ObjectCodec;

impl<C: Object> RowCodec<C> for ObjectCodec {
    fn encode<'d>(
        c: &'d C,
        ids: &IdMap,
        row: &mut Row,
        arrays: &mut Vec<CapturedArray<'d>>,
    ) -> h5pom_store::Result<bool> {
        capture_row(c, row, Some(ids), arrays).map(|()| true)
    }
    fn decode(row: RowRef<'_>, ids: &IdMap, frames: Frames<'_>) -> h5pom_store::Result<C> {
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
    fn decode(row: RowRef<'_>, ids: &IdMap, _frames: Frames<'_>) -> h5pom_store::Result<ChildOf> {
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
    _codec: std::marker::PhantomData<fn() -> K>,
}

impl<C: Component, K: RowCodec<C>> HistoryRows<C, K> {
    pub(crate) fn new(tag: &'static str) -> Self {
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
            _codec: std::marker::PhantomData,
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
                cx.file, &sub, &spath, &series, j, a.dtype, &a.shape, &a.bytes, None,
            )
            .map_err(|source| EcsError::Component {
                entity: id,
                component: self.tag,
                source,
            })?;
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
        if dirty.is_empty() && gone.is_empty() && !(self.everything && first) {
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
        for (e, c) in dirty {
            let Some(id) = cx.ids.id(e) else { continue };
            self.scratch.values.clear();
            let mut arrays = Vec::new();
            let stored =
                K::encode(c, cx.ids, &mut self.scratch, &mut arrays).map_err(|source| {
                    EcsError::Component {
                        entity: id,
                        component: self.tag,
                        source,
                    }
                })?;
            if stored {
                self.put(id, true)?;
                if !arrays.is_empty() {
                    self.append_arrays(id, &arrays, cx)?;
                }
            } else {
                gone.push(id);
            }
        }
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
                K::decode(row, cx.ids, j.map(|j| (&sub, spath.as_str(), j))).map_err(err)?
            } else {
                K::decode(row, cx.ids, None).map_err(err)?
            };
            batch.push((e, c));
        }
        let n = batch.len();
        world.insert_batch(batch);
        Ok(n)
    }
}

/// The history of a resource: one series per field, plus `present`.
pub(crate) struct HistoryRes<R: Resource> {
    state: Option<SystemState<Option<Res<'static, R>>>>,
    samples: Option<usize>,
    /// Whether the last sample had the resource.
    had: Option<bool>,
    everything: bool,
    scratch: Row,
}

impl<R: Resource + Object> HistoryRes<R> {
    pub(crate) fn new() -> Self {
        HistoryRes {
            state: None,
            samples: None,
            had: None,
            everything: true,
            scratch: Row::default(),
        }
    }
}

/// `present` series of a resource history (`uint8`).
const RES_PRESENT: &str = "present";

impl<R: Resource + Object> HistorySync for HistoryRes<R> {
    fn tag(&self) -> &'static str {
        R::TYPE_TAG
    }

    fn is_resource(&self) -> bool {
        true
    }

    fn drain(&mut self, world: &mut World) {
        self.state.get_or_insert_with(|| SystemState::new(world));
    }

    fn loaded(&mut self, world: &mut World) {
        let s = self.state.get_or_insert_with(|| SystemState::new(world));
        let _ = s.get(world);
        self.everything = true;
    }

    fn append(&mut self, world: &World, cx: &HistoryCx<'_>) -> Result<bool> {
        let s = self.state.as_mut().ok_or(EcsError::Uninitialized)?;
        let res = s.get(world)?;
        let err = |source| EcsError::Resource {
            resource: R::TYPE_TAG,
            source,
        };
        let (changed, present) = match &res {
            Some(r) => (r.is_changed() || self.everything, true),
            None => (self.had == Some(true), false),
        };
        if !changed {
            self.everything = false;
            return Ok(false);
        }
        let (g, path) = cx.group(R::TYPE_TAG)?;
        let samples = match self.samples {
            Some(n) => n,
            None if g.link_exists(STEP) => g
                .dataset(STEP)
                .map_err(h5("open dataset", format!("{path}/{STEP}")))?
                .shape()[0],
            None => 0,
        };
        let mut created = Vec::new();
        if let Some(r) = &res {
            self.scratch.values.clear();
            write_row(&**r, &mut self.scratch, Some(cx.ids)).map_err(err)?;
            for (name, v) in self.scratch.names.iter().zip(&self.scratch.values) {
                let name = series_name(name);
                if !g.link_exists(&name) {
                    created.push(name.to_string());
                }
                append_value(&g, &path, &name, samples, v).map_err(err)?;
            }
        }
        if !g.link_exists(RES_PRESENT) {
            created.push(RES_PRESENT.into());
        }
        append_value(
            &g,
            &path,
            RES_PRESENT,
            samples,
            &Value::U8(u8::from(present)),
        )
        .map_err(err)?;
        cx.stamp(&g, &path, samples)?;
        attach(&g, &path, &created, samples == 0, false)?;
        self.samples = Some(samples + 1);
        self.had = Some(present);
        self.everything = false;
        Ok(true)
    }

    fn load_sample(&self, world: &mut World, cx: &SampleCx<'_>) -> Result<usize> {
        let err = |source| EcsError::Resource {
            resource: R::TYPE_TAG,
            source,
        };
        let read = |name: &str| {
            h5pom_store::series::read_value(cx.group, cx.path, name, cx.sample).map_err(err)
        };
        if !matches!(read(RES_PRESENT)?, Value::U8(1)) {
            return Ok(0);
        }
        let stored: Vec<String> = cx
            .group
            .member_names()
            .map_err(h5("list members", cx.path))?
            .into_iter()
            .filter(|n| ![STEP, TIME, TICK, RES_PRESENT].contains(&n.as_str()))
            .collect();
        let mut values = Vec::with_capacity(stored.len());
        for n in &stored {
            values.push(Some(read(n)?));
        }
        let names: Vec<String> = stored.iter().map(|n| field_name(n).to_owned()).collect();
        let r: R = read_row(
            RowRef {
                names: &names,
                values: &mut values,
            },
            Some(cx.ids),
        )
        .map_err(err)?;
        world.insert_resource(r);
        Ok(1)
    }
}

/// Entities with `Persist` whose component types never changed still exist: the index keeps
/// which persistent ids exist at each sample (a history table with no field but presence).
pub(crate) struct IndexHistory {
    table: ColumnTable,
    slot_of: FxHashMap<u64, usize>,
    samples: Option<usize>,
    names: Vec<String>,
}

impl IndexHistory {
    pub(crate) fn new() -> Self {
        IndexHistory {
            table: ColumnTable::new(ENTITY),
            slot_of: FxHashMap::default(),
            samples: None,
            names: vec![PRESENT.into()],
        }
    }

    /// Appends a sample: every id in `ids` present, every other row absent. Only when
    /// `changed` (spawns or despawns this flush) or on the first sample.
    pub(crate) fn append(
        &mut self,
        ids: &IdMap,
        changed: bool,
        cx: &HistoryCx<'_>,
    ) -> Result<bool> {
        if !changed && self.samples.is_some() {
            return Ok(false);
        }
        let (g, path) = cx.group(INDEX_TAG)?;
        let samples = match self.samples {
            Some(n) => n,
            None if g.link_exists(STEP) => {
                let keys: Vec<u64> = g
                    .dataset(ENTITY)
                    .and_then(|d| d.read_raw())
                    .map_err(h5("read dataset", format!("{path}/{ENTITY}")))?;
                for id in keys {
                    self.push(id, false, &path)?;
                }
                g.dataset(STEP)
                    .map_err(h5("open dataset", format!("{path}/{STEP}")))?
                    .shape()[0]
            }
            None => 0,
        };
        let live: HashSet<u64> = ids.sorted_ids().into_iter().collect();
        let known: Vec<u64> = self.table.keys().to_vec();
        for id in known {
            self.push(id, live.contains(&id), &path)?;
        }
        for id in ids.sorted_ids() {
            if !self.slot_of.contains_key(&id) {
                self.push(id, true, &path)?;
            }
        }
        let w = self
            .table
            .append_frame(cx.file, &g, &path, samples)
            .map_err(EcsError::from)?;
        cx.stamp(&g, &path, samples)?;
        attach(&g, &path, &w.created, samples == 0, true)?;
        self.samples = Some(samples + 1);
        Ok(true)
    }

    fn push(&mut self, id: u64, present: bool, path: &str) -> Result<()> {
        let v = [Value::U8(u8::from(present))];
        let r = match self.slot_of.get(&id) {
            Some(&row) => self.table.set(row, &self.names, &v),
            None => self.table.push(id, &self.names, &v).map(|row| {
                self.slot_of.insert(id, row);
            }),
        };
        r.map_err(|source| {
            EcsError::Store(h5pom_store::Error::Table {
                path: path.to_owned(),
                source: Box::new(source),
            })
        })
    }

    /// Forgets the in-memory state (after a load the file is read again on the next append).
    pub(crate) fn reset(&mut self) {
        *self = IndexHistory::new();
    }
}

/// Whether a type is kept in history: `Persist` and hierarchy included.
pub(crate) fn wanted(history: &History, tag: &str) -> bool {
    !history.skip.contains(tag)
}

/// The history of a running sync: its file, the state of every kept type, and what happened
/// since the last sample.
pub(crate) struct HistoryRun {
    conf: History,
    file: File,
    root: Group,
    types: Vec<Box<dyn HistorySync>>,
    index: IndexHistory,
    pending_new: Vec<Entity>,
    pending_gone: Vec<u64>,
    /// The file name the run files link `/ecs/history` to (`None`: the history is in the run
    /// file itself).
    link: Option<String>,
    h5md: Option<H5mdRun>,
}

/// `/ecs/history` of `file`, created if `create`.
fn history_root(file: &File, create: bool) -> Result<Option<Group>> {
    let h5 = file.hdf5();
    let ecs = if h5.link_exists("ecs") {
        h5.group("ecs").map_err(self::h5("open group", "/ecs"))?
    } else if create {
        h5.create_group("ecs")
            .map_err(self::h5("create group", "/ecs"))?
    } else {
        return Ok(None);
    };
    let path = format!("/ecs/{HISTORY}");
    if ecs.link_exists(HISTORY) {
        return ecs
            .group(HISTORY)
            .map(Some)
            .map_err(self::h5("open group", path));
    }
    if !create {
        return Ok(None);
    }
    ecs.create_group(HISTORY)
        .map(Some)
        .map_err(self::h5("create group", path))
}

/// Cuts every series group below `g` to its committed samples (recursively: a component's
/// group holds one series group per entity with arrays).
fn cut(g: &Group, path: &str, committed: u64, series: bool) -> Result<()> {
    let names = g.member_names().map_err(h5("list members", path))?;
    if series {
        let keep = committed_samples(g, path, committed)?;
        let data: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != ENTITY && g.dataset(n).is_ok())
            .collect();
        h5pom_store::series::truncate(g, path, keep, &data)?;
    }
    for n in &names {
        if let Ok(sub) = g.group(n) {
            cut(&sub, &format!("{path}/{n}"), committed, true)?;
        }
    }
    Ok(())
}

/// The number of leading samples of `g` whose tick is at most `committed`.
fn committed_samples(g: &Group, path: &str, committed: u64) -> Result<usize> {
    if !g.link_exists(TICK) {
        return Ok(0);
    }
    let ticks: Vec<u64> = g
        .dataset(TICK)
        .and_then(|d| d.read_raw())
        .map_err(h5("read dataset", format!("{path}/{TICK}")))?;
    Ok(ticks.iter().take_while(|&&t| t <= committed).count())
}

impl HistoryRun {
    /// Starts (or continues) the history of a sync whose file is `path` and holds
    /// `committed` ticks: in the sidecar `<path>.history`, or in `in_file` (in-memory syncs).
    /// Samples a killed writer left past the committed tick are cut off.
    pub(crate) fn open(
        path: &std::path::Path,
        in_file: Option<&File>,
        committed: u64,
        types: Vec<Box<dyn HistorySync>>,
        conf: History,
    ) -> Result<Self> {
        let (file, link) = match in_file {
            Some(f) => (f.clone(), None),
            None => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let side = path.with_file_name(format!("{name}.history"));
                let file = File::open_unlocked(
                    &side,
                    h5pom_store::Mode::OpenOrCreate,
                    h5pom_store::Schema::new(),
                )?;
                (file, Some(format!("{name}.history")))
            }
        };
        let root = history_root(&file, true)?.ok_or(EcsError::Uninitialized)?;
        cut(&root, &format!("/ecs/{HISTORY}"), committed, false)?;
        file.flush()?;
        let mut conf = conf;
        let h5md = conf.h5md.take().map(H5mdRun::new);
        Ok(HistoryRun {
            h5md,
            conf,
            file,
            root,
            types,
            index: IndexHistory::new(),
            pending_new: Vec::new(),
            pending_gone: Vec::new(),
            link,
        })
    }

    /// The sidecar's file name, to link `/ecs/history` of the run files to.
    pub(crate) fn link(&self) -> Option<&str> {
        self.link.as_deref()
    }

    /// The root groups the run files link to the sidecar too (the H5MD view's).
    pub(crate) fn root_links(&self) -> &'static [&'static str] {
        if self.h5md.is_some() {
            &h5md::ROOTS
        } else {
            &[]
        }
    }

    /// Reads this tick's removal events.
    pub(crate) fn drain(&mut self, world: &mut World, new: &[Entity], gone: &[u64]) {
        self.pending_new.extend_from_slice(new);
        self.pending_gone.extend_from_slice(gone);
        for t in &mut self.types {
            t.drain(world);
        }
    }

    /// After a load: the next sample of every type records it whole.
    pub(crate) fn loaded(&mut self, world: &mut World) {
        self.pending_new.clear();
        self.pending_gone.clear();
        for t in &mut self.types {
            t.loaded(world);
        }
        self.index.reset();
    }

    /// Appends this flush's samples (tick `tick`) and flushes the history file; true if any.
    pub(crate) fn append(&mut self, world: &World, ids: &IdMap, tick: u64) -> Result<bool> {
        let (step, time) = (self.conf.step_time)(world);
        let new = std::mem::take(&mut self.pending_new);
        let gone = std::mem::take(&mut self.pending_gone);
        let cx = HistoryCx {
            file: &self.file,
            root: &self.root,
            ids,
            new_entities: &new,
            step,
            time,
            tick,
        };
        let mut any = self
            .index
            .append(ids, !new.is_empty() || !gone.is_empty(), &cx)?;
        for t in &mut self.types {
            for &id in &gone {
                t.entity_gone(id);
            }
            any |= t.append(world, &cx)?;
        }
        if let Some(v) = &mut self.h5md {
            let root = self.file.hdf5().group("/").map_err(h5("open group", "/"))?;
            v.update(world, ids, &root)?;
        }
        if any {
            self.file.flush()?;
        }
        Ok(any)
    }
}

/// A run file's history, for reading (`Registry::load_at`, [`HistoryReader`]).
pub struct HistoryReader {
    file: File,
    root: Option<Group>,
    committed: u64,
}

impl std::fmt::Debug for HistoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryReader")
            .field("file", &self.file.path())
            .field("committed", &self.committed)
            .finish()
    }
}

impl HistoryReader {
    /// Opens the history of the synced file (or slot pair link) `path`, read-only. Only
    /// samples of committed ticks are seen.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let file = File::open_read_only(path.as_ref(), h5pom_store::Schema::new())?;
        let committed = crate::layout::Layout::open(file.clone())?.tick()?;
        let root = history_root(&file, false)?;
        Ok(HistoryReader {
            file,
            root,
            committed,
        })
    }

    /// The tick the file is at: samples of later ticks (left by a killed writer) are ignored.
    pub fn committed_tick(&self) -> u64 {
        self.committed
    }

    /// The types with a history (tags), and `index`.
    pub fn tags(&self) -> Result<Vec<String>> {
        match &self.root {
            Some(r) => r.member_names().map_err(h5("list members", "/ecs/history")),
            None => Ok(Vec::new()),
        }
    }

    pub(crate) fn group(&self, tag: &str) -> Result<Option<(Group, String)>> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let path = format!("/ecs/{HISTORY}/{tag}");
        if !root.link_exists(tag) {
            return Ok(None);
        }
        root.group(tag)
            .map(|g| Some((g, path.clone())))
            .map_err(h5("open group", path))
    }

    /// The committed steps of `tag`'s samples, in order.
    pub fn steps(&self, tag: &str) -> Result<Vec<i64>> {
        let Some((g, path)) = self.group(tag)? else {
            return Ok(Vec::new());
        };
        let n = committed_samples(&g, &path, self.committed)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let steps: Vec<i64> = g
            .dataset(STEP)
            .and_then(|d| d.read_raw())
            .map_err(h5("read dataset", format!("{path}/{STEP}")))?;
        Ok(steps.into_iter().take(n).collect())
    }

    /// The sample of `tag` that holds its state at `step`: the last committed one whose step is
    /// at most `step` (`None` if the type had no sample yet).
    pub fn sample_at(&self, tag: &str, step: i64) -> Result<Option<usize>> {
        Ok(self.steps(tag)?.iter().rposition(|&s| s <= step))
    }

    /// The series of field `field` of `tag` for entity `id` (persistent id) over its committed
    /// samples: `(step, value)`, `None` where the entity did not have the component (or the
    /// value was `None`). Reads one column of the `[step, entity]` dataset, nothing else.
    pub fn series(&self, tag: &str, field: &str, id: u64) -> Result<Vec<(i64, Option<Value>)>> {
        let Some((g, path)) = self.group(tag)? else {
            return Ok(Vec::new());
        };
        let steps = self.steps(tag)?;
        let keys: Vec<u64> = g
            .dataset(ENTITY)
            .and_then(|d| d.read_raw())
            .map_err(h5("read dataset", format!("{path}/{ENTITY}")))?;
        let Some(slot) = keys.iter().position(|&k| k == id) else {
            return Ok(Vec::new());
        };
        let column = |name: &str| -> Result<Vec<Value>> {
            h5pom_store::series::read_column(&g, &path, name, slot, steps.len())
                .map_err(EcsError::from)
        };
        let field = series_name(field);
        let values = column(&field)?;
        let present = column(PRESENT)?;
        let none_name = format!("{field}{}", h5pom_store::table::NONE_SUFFIX);
        let nones = if g.link_exists(&none_name) {
            Some(column(&none_name)?)
        } else {
            None
        };
        Ok(steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let here = matches!(present.get(i), Some(Value::U8(1)));
                let none = nones
                    .as_ref()
                    .is_some_and(|m| !matches!(m.get(i), Some(Value::U8(0)) | None));
                let v = values.get(i).cloned().filter(|_| here && !none);
                (s, v)
            })
            .collect())
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}
