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
mod slots;
mod sync;
mod table;

use bevy_ecs::error::BevyError;
use bevy_ecs::prelude::*;

pub use component::TypeFlush;
pub use error::{EcsError, Result};
pub use hierarchy::CHILD_OF_TAG;
pub use history::{H5md, History, ParticleGroup};
pub use ids::{Persist, PersistentId};
pub use load::LoadReport;
pub use recovery::{Recovery, recover};
pub use registry::{Registry, Storage};
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
/// A failed flush returns its error to bevy's error handler, and **bevy's default handler
/// panics**: install a non-panicking one (bevy's `error` module, e.g. the `warn` handler) to
/// keep the app running, or call [`H5Sync::tick`] from a system of your own and handle the
/// error there. Either way the file keeps its last committed tick and the sync is halted
/// ([`H5Sync::is_halted`]). Does nothing if no [`H5Sync`] resource is present.
pub fn flush_system(world: &mut World) -> Result<(), BevyError> {
    if !world.contains_resource::<H5Sync>() {
        return Ok(());
    }
    world.resource_scope(|world, mut sync: Mut<H5Sync>| sync.tick(world))?;
    Ok(())
}

/// Adds [`flush_system`] to `schedule` in [`H5PomSet::Flush`].
pub fn add_flush_system(schedule: &mut Schedule) {
    schedule.add_systems(flush_system.in_set(H5PomSet::Flush));
}

#[cfg(test)]
mod crash_tests;
