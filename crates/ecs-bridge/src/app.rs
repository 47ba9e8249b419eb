//! [`H5PomPlugin`]: h5pom in a bevy `App`, in one line (cargo feature `app`, on by default).
//!
//! ```no_run
//! use bevy_app::prelude::*;
//! use bevy_ecs::prelude::*;
//! use h5pom_ecs::{H5PomPlugin, Persist, Registry};
//!
//! #[derive(Component, h5pom_derive::Object)]
//! #[h5pom(crate = "h5pom_store")]
//! struct Health { hp: i32 }
//!
//! App::new()
//!     .add_plugins(H5PomPlugin::new("save.h5", Registry::new().component::<Health>()))
//!     .add_systems(Startup, |mut commands: Commands| {
//!         commands.spawn((Persist, Health { hp: 3 }));
//!     })
//!     .run();
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use bevy_app::{App, Last, Plugin};
use bevy_ecs::message::Messages;
use bevy_ecs::prelude::*;

use crate::error::EcsError;
use crate::history::History;
use crate::ids::DanglingRefs;
use crate::load::{Checkpoint, LoadMode, LoadReport};
use crate::registry::Registry;
use crate::slots::Durability;
use crate::sync::{FlushPolicy, H5Sync};
use crate::{ComponentsSkipped, FlushFailed, H5PomSet, flush_system};

/// How [`H5PomPlugin`] opens its file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Open {
    /// Resume the file if it exists (its entities are loaded into the world, and the sync goes
    /// on from its last tick), otherwise create it. The default.
    #[default]
    ResumeOrCreate,
    /// Create (truncate) the file.
    Create,
    /// Resume the file; opening fails if it does not exist.
    Resume,
}

/// Persists the world of an `App` into an HDF5 file: adds the flush to `Last` (in
/// [`H5PomSet::Flush`]; order your systems before it to have their changes in the same tick),
/// opens or resumes the file when the plugin is built, and serves [`H5PomRequest`]s, answering
/// each with an [`H5PomDone`].
///
/// Nothing it does panics: a file that cannot be opened is logged and reported as
/// [`H5PomDone::Failed`] (the app runs without persistence); a failed flush is logged and
/// sent as [`FlushFailed`] (the next flush retries); a component with a reference to an
/// entity that is not persisted is skipped, logged and sent as [`ComponentsSkipped`]
/// ([`DanglingRefs`]).
pub struct H5PomPlugin {
    path: PathBuf,
    registry: Registry,
    open: Open,
    durability: Durability,
    policy: FlushPolicy,
    dangling: DanglingRefs,
    background: bool,
    history: Mutex<Option<History>>,
}

impl H5PomPlugin {
    /// Persists the types of `registry` into `path` (resumed if it exists, else created).
    pub fn new(path: impl Into<PathBuf>, registry: Registry) -> Self {
        H5PomPlugin {
            path: path.into(),
            registry,
            open: Open::default(),
            durability: Durability::default(),
            policy: FlushPolicy::EveryTick,
            dangling: DanglingRefs::default(),
            background: false,
            history: Mutex::new(None),
        }
    }

    /// How the file is opened (default [`Open::ResumeOrCreate`]).
    pub fn open(mut self, open: Open) -> Self {
        self.open = open;
        self
    }

    /// The crash safety of the file (default [`Durability::Process`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// When the flush writes (default every tick).
    pub fn flush_policy(mut self, policy: FlushPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// What a reference to an entity that is not persisted does (default
    /// [`DanglingRefs::Skip`]).
    pub fn dangling_refs(mut self, policy: DanglingRefs) -> Self {
        self.dangling = policy;
        self
    }

    /// Background flushes ([`H5Sync::set_background`]): the arrays of a tick are written
    /// by a writer thread while the next frame runs.
    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    /// Keeps every flushed tick ([`H5Sync::keep_history`]).
    pub fn history(self, history: History) -> Self {
        *self.history.lock().unwrap_or_else(PoisonError::into_inner) = Some(history);
        self
    }

    fn open_sync(&self, world: &mut World) -> Result<(H5Sync, u64, usize), EcsError> {
        let exists = std::fs::symlink_metadata(&self.path).is_ok();
        let (mut sync, tick, entities) = match (self.open, exists) {
            (Open::Create, _) | (Open::ResumeOrCreate, false) => (
                H5Sync::create_with(&self.path, &self.registry, self.durability)?,
                0,
                0,
            ),
            (Open::Resume, _) | (Open::ResumeOrCreate, true) => {
                let (sync, report) =
                    H5Sync::resume_with(world, &self.path, &self.registry, self.durability)?;
                (sync, report.tick, report.entities)
            }
        };
        sync.set_policy(self.policy);
        sync.set_dangling_refs(self.dangling);
        sync.set_background(self.background)?;
        let history = self
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = history {
            sync.keep_history(&self.registry, h)?;
        }
        Ok((sync, tick, entities))
    }
}

impl Plugin for H5PomPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<H5PomRequest>()
            .add_message::<H5PomDone>()
            .add_message::<FlushFailed>()
            .add_message::<ComponentsSkipped>()
            .insert_resource(H5PomRegistry(self.registry.clone()))
            .init_resource::<Checkpoints>()
            .add_systems(
                Last,
                (serve_requests, flush_system)
                    .chain()
                    .in_set(H5PomSet::Flush),
            );
        let world = app.world_mut();
        let done = match self.open_sync(world) {
            Ok((sync, tick, entities)) => {
                world.insert_resource(sync);
                H5PomDone::Opened {
                    path: self.path.clone(),
                    tick,
                    entities,
                }
            }
            Err(error) => {
                log::error!(
                    "h5pom: cannot open {} (the app runs without persistence): {error}",
                    self.path.display()
                );
                H5PomDone::Failed {
                    request: format!("open {}", self.path.display()),
                    error: Arc::new(error),
                }
            }
        };
        world.write_message(done);
    }
}

/// The registry the plugin persists (a resource, for systems of your own).
#[derive(Resource, Clone)]
pub struct H5PomRegistry(pub Registry);

/// Named in-memory checkpoints ([`H5PomRequest::Checkpoint`]).
#[derive(Resource, Default)]
struct Checkpoints(HashMap<String, Checkpoint>);

/// What a system can ask the plugin to do (send it with a `MessageWriter<H5PomRequest>`);
/// served in `Last`, before the flush; each is answered by an [`H5PomDone`].
#[derive(Message, Clone, Debug)]
#[non_exhaustive]
pub enum H5PomRequest {
    /// Flush now, whatever the flush policy.
    Save,
    /// Write the whole persisted world to this file (atomically), with the sync's array
    /// options.
    Snapshot(PathBuf),
    /// Load a file into the world.
    Load {
        /// The file.
        path: PathBuf,
        /// Alongside, replacing or as a copy ([`LoadMode`]).
        mode: LoadMode,
    },
    /// Load only the entities of these persistent ids from a file
    /// ([`Registry::load_ids`](crate::Registry::load_ids)); answered by
    /// [`Loaded`](H5PomDone::Loaded).
    LoadIds {
        /// The file.
        path: PathBuf,
        /// The persistent ids to load.
        ids: Vec<u64>,
        /// Alongside, replacing those entities in place, or as copies ([`LoadMode`]).
        mode: LoadMode,
    },
    /// Keep an in-memory copy of the persisted world under this name.
    Checkpoint(String),
    /// Put the persisted world back as the named checkpoint holds it.
    Rollback(String),
}

/// The answer to an [`H5PomRequest`] (and to opening the file).
#[derive(Message, Clone, Debug)]
#[non_exhaustive]
pub enum H5PomDone {
    /// The file was opened (created: tick 0, no entities; or resumed).
    Opened {
        /// The file.
        path: PathBuf,
        /// Its tick.
        tick: u64,
        /// Entities loaded from it.
        entities: usize,
    },
    /// A [`Save`](H5PomRequest::Save) committed this tick.
    Saved {
        /// The file's tick.
        tick: u64,
    },
    /// A [`Snapshot`](H5PomRequest::Snapshot) was written.
    Snapshot {
        /// The file.
        path: PathBuf,
        /// Entities written.
        entities: usize,
    },
    /// A [`Load`](H5PomRequest::Load) is done.
    Loaded {
        /// The file.
        path: PathBuf,
        /// What was loaded.
        report: LoadReport,
    },
    /// A [`Checkpoint`](H5PomRequest::Checkpoint) was taken.
    Checkpointed(String),
    /// A [`Rollback`](H5PomRequest::Rollback) is done.
    RolledBack(String),
    /// A request (or opening the file) failed; nothing else changed.
    Failed {
        /// What was asked.
        request: String,
        /// Why it failed.
        error: Arc<EcsError>,
    },
}

fn serve_requests(world: &mut World) {
    let requests: Vec<H5PomRequest> = match world.get_resource_mut::<Messages<H5PomRequest>>() {
        Some(mut m) => m.drain().collect(),
        None => return,
    };
    for request in requests {
        let what = format!("{request:?}");
        let done = serve(world, request).unwrap_or_else(|error| {
            log::error!("h5pom: {what} failed: {error}");
            H5PomDone::Failed {
                request: what,
                error: Arc::new(error),
            }
        });
        world.write_message(done);
    }
}

fn serve(world: &mut World, request: H5PomRequest) -> Result<H5PomDone, EcsError> {
    let registry = world
        .get_resource::<H5PomRegistry>()
        .map(|r| r.0.clone())
        .ok_or(EcsError::Uninitialized)?;
    Ok(match request {
        H5PomRequest::Save => {
            if !world.contains_resource::<H5Sync>() {
                return Err(EcsError::NoSync);
            }
            // Committed when answered, background flushes included.
            let tick = world.resource_scope(|world, mut sync: Mut<H5Sync>| {
                sync.flush_now(world)?;
                sync.wait()?;
                Ok::<_, EcsError>(sync.flushes())
            })?;
            H5PomDone::Saved { tick }
        }
        H5PomRequest::Snapshot(path) => {
            let options = world
                .get_resource::<H5Sync>()
                .map(H5Sync::array_options)
                .unwrap_or_default();
            let stats = registry.snapshot_with(world, &path, options)?;
            H5PomDone::Snapshot {
                path,
                entities: stats.spawned,
            }
        }
        H5PomRequest::Load { path, mode } => {
            let report = registry.load_with(world, &path, mode)?;
            H5PomDone::Loaded { path, report }
        }
        H5PomRequest::LoadIds { path, ids, mode } => {
            let report = registry.load_ids(world, &path, ids, mode)?;
            H5PomDone::Loaded { path, report }
        }
        H5PomRequest::Checkpoint(name) => {
            let cp = registry.checkpoint(world)?;
            world
                .resource_mut::<Checkpoints>()
                .0
                .insert(name.clone(), cp);
            H5PomDone::Checkpointed(name)
        }
        H5PomRequest::Rollback(name) => {
            world.resource_scope(|world, cps: Mut<Checkpoints>| {
                let cp = cps
                    .0
                    .get(&name)
                    .ok_or_else(|| EcsError::NoCheckpoint { name: name.clone() })?;
                registry.rollback(world, cp)
            })?;
            H5PomDone::RolledBack(name)
        }
    })
}
