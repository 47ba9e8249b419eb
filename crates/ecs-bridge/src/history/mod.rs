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

use bevy_ecs::prelude::*;
use h5pom_store::reexports::hdf5::{self, Group};
use h5pom_store::series::{append_value, attach_dimension_scale, set_dimension_scale};
use h5pom_store::{File, Object, Value};

mod h5md;
mod seq;

pub use seq::seq_path;

pub use h5md::{H5md, ParticleGroup};

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
    /// Every component type with a recorded instance samples at every flush, changed or not
    /// (the shards of a sharded run: their sample axes stay aligned).
    pub(crate) every: bool,
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

/// Gives every trailing axis `k` of the frame series `name` (and of its `-shape` record) a
/// netCDF dimension scale `<name>-dim<k>` holding `0, 1, …`, grown with the series, so xarray
/// shows named dimensions only.
fn axis_scales(g: &Group, path: &str, name: &str) -> Result<()> {
    let shape_name = format!("{name}{}", h5pom_store::series::SHAPE_SUFFIX);
    for series in [name, shape_name.as_str()] {
        let here = format!("{path}/{series}");
        let ds = g.dataset(series).map_err(h5("open dataset", &here))?;
        let shape = ds.shape();
        for (k, &len) in shape.iter().enumerate().skip(1) {
            let sname = format!("{series}-dim{k}");
            let spath = format!("{path}/{sname}");
            let index: Vec<u64> = (0..len as u64).collect();
            if g.link_exists(&sname) {
                let sc = g.dataset(&sname).map_err(h5("open dataset", &spath))?;
                let have = sc.shape()[0];
                if have < len {
                    sc.resize([len])
                        .and_then(|()| {
                            sc.write_slice(
                                &index[have..],
                                h5pom_store::reexports::ndarray::s![have..len],
                            )
                        })
                        .map_err(h5("grow dimension scale", &spath))?;
                }
            } else {
                let sc = g
                    .new_dataset::<u64>()
                    .chunk([len.clamp(1, 1 << 16)])
                    .shape([(len, None)])
                    .create(sname.as_str())
                    .map_err(h5("create dimension scale", &spath))?;
                sc.write(&index)
                    .map_err(h5("write dimension scale", &spath))?;
                set_dimension_scale(&sc, &spath, &sname)?;
                attach_dimension_scale(&ds, &here, &sc, k)?;
            }
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

/// Whether a type is kept in history: `Persist` and hierarchy included.
pub(crate) fn wanted(history: &History, tag: &str) -> bool {
    !history.skip.contains(tag)
}

mod index;
mod reader;
mod resource;
mod rows;
mod run;

pub use reader::HistoryReader;
pub(crate) use resource::HistoryRes;
use resource::RES_PRESENT;
#[cfg(feature = "reflect")]
pub(crate) use rows::Frames;
pub(crate) use rows::{ChildOfCodec, HistoryRows, RowCodec};
pub(crate) use run::HistoryRun;
use run::{committed_samples, history_root};
