//! The history of a resource: one value series per scalar field, one frame series per array
//! field, plus `present`.

use bevy_ecs::system::SystemState;
use h5pom_store::series::append_value;
use h5pom_store::{Row, RowRef, Value};

use super::*;

use crate::error::{EcsError, Result};

/// The history of a resource: one series per field, plus `present`. The codec `K` knows
/// `R`'s fields.
pub(crate) struct HistoryRes<R: Resource, K> {
    tag: &'static str,
    codec: K,
    state: Option<SystemState<Option<Res<'static, R>>>>,
    samples: Option<usize>,
    /// Whether the last sample had the resource.
    had: Option<bool>,
    everything: bool,
    scratch: Row,
}

impl<R: Resource, K: RowCodec<R>> HistoryRes<R, K> {
    pub(crate) fn new(tag: &'static str, codec: K) -> Self {
        HistoryRes {
            tag,
            codec,
            state: None,
            samples: None,
            had: None,
            everything: true,
            scratch: Row::default(),
        }
    }
}

/// `present` series of a resource history (`uint8`).
pub(super) const RES_PRESENT: &str = "present";

impl<R: Resource, K: RowCodec<R>> HistorySync for HistoryRes<R, K> {
    fn tag(&self) -> &'static str {
        self.tag
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
            resource: self.tag,
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
        let (g, path) = cx.group(self.tag)?;
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
            let mut arrays = Vec::new();
            self.codec
                .encode(&**r, cx.ids, &mut self.scratch, &mut arrays)
                .map_err(err)?;
            for (name, v) in self.scratch.names.iter().zip(&self.scratch.values) {
                let name = series_name(name);
                let none = matches!(v, Value::None);
                if !g.link_exists(&name) && !none {
                    created.push(name.to_string());
                }
                append_value(&g, &path, &name, samples, v).map_err(err)?;
                // `<field>-none`: 1 where the field was `None` (created at the first `None`;
                // 0 in the samples before it).
                let mask = format!("{name}{}", h5pom_store::table::NONE_SUFFIX);
                if none || g.link_exists(&mask) {
                    if !g.link_exists(&mask) {
                        created.push(mask.clone());
                    }
                    append_value(&g, &path, &mask, samples, &Value::U8(u8::from(none)))
                        .map_err(err)?;
                }
            }
            for a in &arrays {
                let name = series_name(&a.name);
                if !g.link_exists(&name) {
                    created.push(name.to_string());
                    created.push(format!("{name}{}", h5pom_store::series::SHAPE_SUFFIX));
                }
                h5pom_store::series::append_frame(
                    cx.file,
                    &g,
                    &path,
                    &name,
                    samples,
                    a.dtype,
                    &a.shape,
                    &a.bytes,
                    Some(&h5pom_store::series::array_chunk(
                        cx.file, &a.shape, a.dtype,
                    )),
                )
                .map_err(err)?;
                axis_scales(&g, &path, &name)?;
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
            resource: self.tag,
            source,
        };
        let read = |name: &str| {
            h5pom_store::series::read_value(cx.group, cx.path, name, cx.sample).map_err(err)
        };
        if !matches!(read(RES_PRESENT)?, Value::U8(1)) {
            return Ok(0);
        }
        // Scalar fields are the 1-D series; array fields (`[sample, …]`) are read as frames.
        let stored: Vec<String> = cx
            .group
            .member_names()
            .map_err(h5("list members", cx.path))?
            .into_iter()
            .filter(|n| ![STEP, TIME, TICK, RES_PRESENT].contains(&n.as_str()))
            .filter(|n| cx.group.dataset(n).is_ok_and(|d| d.ndim() == 1))
            .filter(|n| !n.contains("-dim"))
            .filter(|n| !n.ends_with(h5pom_store::table::NONE_SUFFIX))
            .collect();
        let mut values = Vec::with_capacity(stored.len());
        for n in &stored {
            let mask = format!("{n}{}", h5pom_store::table::NONE_SUFFIX);
            let none = cx.group.link_exists(&mask) && matches!(read(&mask)?, Value::U8(1));
            values.push(Some(if none { Value::None } else { read(n)? }));
        }
        let names: Vec<String> = stored.iter().map(|n| field_name(n).to_owned()).collect();
        let row = RowRef {
            names: &names,
            values: &mut values,
        };
        let r: R = self
            .codec
            .decode(row, cx.ids, Some((cx.group, cx.path, cx.sample)))
            .map_err(err)?;
        world.insert_resource(r);
        Ok(1)
    }
}
