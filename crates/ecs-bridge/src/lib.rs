//! # h5pom-ecs
//!
//! A `bevy_ecs` world kept in sync with an HDF5 file: persisted entities are groups (or rows
//! of column tables), their components attributes and datasets, `Entity` fields persistent
//! ids. A flush system writes what changed each tick (for column tables, the chunks holding
//! changed rows); snapshots and reloads are exact.
//!
//! ```
//! use bevy_ecs::prelude::*;
//! use h5pom_ecs::{H5Sync, Persist, Registry};
//!
//! #[derive(Component, h5pom_derive::Object)]
//! #[h5pom(crate = "h5pom_store")]
//! struct Person { name: String, age: u32 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("world.h5");
//! let registry = Registry::new().component::<Person>();
//! let mut world = World::new();
//! world.insert_resource(H5Sync::create(&path, &registry)?);
//! let mut schedule = Schedule::default();
//! h5pom_ecs::add_flush_system(&mut schedule);
//!
//! let joe = world.spawn((Persist, Person { name: "Joe".into(), age: 25 })).id();
//! schedule.run(&mut world);
//! world.get_mut::<Person>(joe).unwrap().age = 23;
//! schedule.run(&mut world);
//! world.remove_resource::<H5Sync>(); // closes the file
//!
//! let mut again = World::new();
//! registry.load(&mut again, &path)?;
//! let ages: Vec<u32> = again.query::<&Person>().iter(&again).map(|p| p.age).collect();
//! assert_eq!(ages, [23]);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "app")]
mod app;
mod codec;
mod component;
mod error;
mod hierarchy;
pub mod history;
mod ids;
pub mod layout;
mod load;
mod recovery;
#[cfg(feature = "reflect")]
mod reflect;
mod registry;
mod resource;
pub mod sharded;
mod slots;
mod staged;
mod sync;
mod table;

use bevy_ecs::message::Messages;
use bevy_ecs::prelude::*;

#[cfg(feature = "app")]
pub use app::{H5PomDone, H5PomPlugin, H5PomRegistry, H5PomRequest, Open};
pub use component::TypeFlush;
pub use error::{EcsError, RefTarget, Result};
pub use hierarchy::CHILD_OF_TAG;
pub use history::{H5md, History, ParticleGroup};
pub use ids::{DanglingRefs, Persist, PersistentId};
pub use load::{Checkpoint, LoadMode, LoadReport};
pub use recovery::{Recovery, recover};
pub use registry::{Registry, Storage};
pub use sharded::{Collective, ShardedFlush, ShardedLoad, ShardedSync, Solo};
pub use slots::{Durability, slot_paths};
pub use sync::{ExtraWrite, FlushPolicy, FlushStats, H5Sync};

/// The system set of h5pom's flush: order your systems `.before(H5PomSet::Flush)` so that
/// their changes reach the file in the same tick.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum H5PomSet {
    /// The flush system.
    Flush,
}

/// The flush system: tracks changes every tick and writes them per the [`FlushPolicy`].
///
/// It never fails and never panics. A failed flush is logged (`log::error!`, once per
/// distinct error), counted ([`H5Sync::failed_flushes`], [`H5Sync::last_error`]) and, when
/// the world has the message type (the plugin registers it), sent as a [`FlushFailed`]
/// message with the typed error; the file keeps its last committed tick and the next flush
/// retries (see [`H5Sync::failed_flushes`]). Components a flush skipped (a reference to an
/// entity that is not persisted: [`DanglingRefs`]) are logged and sent as
/// [`ComponentsSkipped`]. Does nothing if no [`H5Sync`] resource is present.
pub fn flush_system(world: &mut World) {
    if !world.contains_resource::<H5Sync>() {
        return;
    }
    let (result, skipped, tick) = world.resource_scope(|world, mut sync: Mut<H5Sync>| {
        let r = sync.tick(world);
        (r, sync.take_new_skips(), sync.flushes())
    });
    if let Err(error) = result
        && world.contains_resource::<Messages<FlushFailed>>()
    {
        world.write_message(FlushFailed {
            tick,
            error: std::sync::Arc::new(error),
        });
    }
    if !skipped.is_empty() && world.contains_resource::<Messages<ComponentsSkipped>>() {
        world.write_message(ComponentsSkipped {
            tick,
            errors: skipped.into(),
        });
    }
}

/// Sent by [`flush_system`] when a flush failed (the file keeps its last committed tick; the
/// next flush retries).
#[derive(Message, Clone, Debug)]
pub struct FlushFailed {
    /// The file's tick (the last committed one).
    pub tick: u64,
    /// What went wrong.
    pub error: std::sync::Arc<EcsError>,
}

/// Sent by [`flush_system`] when a flush skipped components (see [`DanglingRefs`]): each
/// error says which entity, component and field, and whether the target was never persisted
/// or despawned. Sent for a component when it is first skipped, not again while it stays
/// skipped.
#[derive(Message, Clone, Debug)]
pub struct ComponentsSkipped {
    /// The file's tick after the flush.
    pub tick: u64,
    /// One [`EcsError::DanglingRef`] per newly skipped component.
    pub errors: std::sync::Arc<[EcsError]>,
}

/// Adds [`flush_system`] to `schedule` in [`H5PomSet::Flush`].
pub fn add_flush_system(schedule: &mut Schedule) {
    schedule.add_systems(flush_system.in_set(H5PomSet::Flush));
}

#[cfg(test)]
mod crash_tests;
