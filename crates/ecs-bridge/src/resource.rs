//! Resources: one group each, `/ecs/resources/<Tag>`, written when changed.

use std::marker::PhantomData;

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use h5pom_store::Embed;

use crate::codec::Codec;
use crate::component::{FlushCx, LoadCx, uninit};
use crate::error::{EcsError, Result};
use crate::layout::Layout;

/// The sync of one resource type.
pub(crate) trait ResourceSync: Send + Sync {
    fn init(&mut self, world: &mut World);
    /// After a load: the resource in the world is what the file holds.
    fn loaded(&mut self, world: &mut World);
    fn flush(&mut self, world: &World, cx: &FlushCx<'_>) -> Result<bool>;
    /// The file was replaced by a copy of the other slot: learn whether it holds the resource.
    fn file_replaced(&mut self, layout: &Layout) -> Result<()>;
    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<bool>;
}

/// A resource stored as the group `/ecs/resources/<Tag>`; the codec `K` knows `R`'s fields.
pub(crate) struct ResSync<R: Resource, K> {
    codec: K,
    tag: &'static str,
    state: Option<SystemState<Option<Res<'static, R>>>>,
    stored: bool,
    _r: PhantomData<fn() -> R>,
}

impl<R: Resource, K: Codec<R>> ResSync<R, K> {
    pub(crate) fn new(codec: K) -> Self {
        let tag = codec.tag();
        ResSync {
            codec,
            tag,
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

impl<R: Resource, K: Codec<R>> ResourceSync for ResSync<R, K> {
    fn init(&mut self, world: &mut World) {
        self.state.get_or_insert_with(|| SystemState::new(world));
    }

    fn loaded(&mut self, world: &mut World) {
        let state = self.state.get_or_insert_with(|| SystemState::new(world));
        // Reading the resource once moves the change baseline past the load.
        self.stored = matches!(state.get(world), Ok(Some(_)));
    }

    fn file_replaced(&mut self, layout: &Layout) -> Result<()> {
        self.stored = match layout.resources(false)? {
            Some(folder) => folder.contains(self.tag).map_err(res_err(self.tag))?,
            None => false,
        };
        Ok(())
    }

    fn flush(&mut self, world: &World, cx: &FlushCx<'_>) -> Result<bool> {
        let state = self.state.as_mut().ok_or_else(uninit)?;
        let res = state.get(world)?;
        let err = res_err(self.tag);
        match res {
            Some(r) if r.is_changed() || cx.full || !self.stored => {
                let folder = cx.layout.resources(true)?.ok_or_else(uninit)?;
                if self.stored && !cx.full {
                    self.codec.save(&folder, &r).map_err(err)?;
                } else {
                    self.codec.insert(&folder, &r).map_err(err)?;
                }
                self.stored = true;
                Ok(true)
            }
            None if self.stored => {
                if let Some(folder) = cx.layout.resources(false)? {
                    folder.remove(self.tag).map_err(err)?;
                }
                self.stored = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn load(&self, world: &mut World, cx: &LoadCx<'_>) -> Result<bool> {
        let err = res_err(self.tag);
        let Some(folder) = cx.layout.resources(false)? else {
            return Ok(false);
        };
        if !folder.contains(self.tag).map_err(&err)? {
            return Ok(false);
        }
        let f = folder.folder(self.tag).map_err(&err)?;
        let embed = Embed {
            prefix: None,
            refs: Some(cx.refs),
            fresh: false,
        };
        let r: R = self
            .codec
            .read_fields(cx.layout.file(), f.hdf5_group(), f.path(), embed)
            .map_err(&err)?;
        world.insert_resource(r);
        Ok(true)
    }
}
