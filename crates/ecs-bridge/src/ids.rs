//! Persistent entity ids: stable across runs, never raw `Entity` bits.

use rustc_hash::FxHashMap;

use bevy_ecs::entity::EntityHashMap;
use bevy_ecs::prelude::*;
use h5pom_store::RefMap;

/// Marks an entity as persisted. Only entities with this marker are written; removing it (or
/// despawning the entity) deletes the entity from the file on the next flush.
///
/// To persist by another criterion, add and remove `Persist` from a system of your own.
#[derive(Component, Clone, Copy, Debug, Default)]
#[require(PersistentId)]
pub struct Persist;

/// The entity's id in the file, assigned on its first flush (`0` = not assigned yet) and kept
/// across runs: reloading a file gives every entity its stored id back.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersistentId(pub u64);

/// Both directions of the entity ↔ persistent-id map.
#[derive(Debug, Default)]
pub(crate) struct IdMap {
    // bevy's entity hasher: several times cheaper than SipHash on the per-row hot path.
    by_entity: EntityHashMap<u64>,
    by_id: FxHashMap<u64, Entity>,
    /// The next id to hand out (ids start at 1).
    pub(crate) next: u64,
    /// [`DanglingRefs::StoreNone`]: optional references to entities that are not persisted
    /// are stored as `None`.
    pub(crate) unmapped_as_none: bool,
}

/// What a flush does with a reference (an `Entity` field) to an entity that is not persisted
/// or was despawned ([`H5Sync::set_dangling_refs`](crate::H5Sync::set_dangling_refs)).
/// Either way every other component is written and the app goes on; the flush reports the
/// component ([`H5Sync::skipped`](crate::H5Sync::skipped), [`EcsError::DanglingRef`]) and a
/// log warning says whether the target was never persisted or was despawned.
///
/// [`EcsError::DanglingRef`]: crate::EcsError::DanglingRef
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DanglingRefs {
    /// The component is not written for that entity this tick (the file keeps its last
    /// value, or none), and is retried at every flush until it can be written: persistence
    /// of it resumes by itself once the target is persisted or the reference changes.
    #[default]
    Skip,
    /// An `Option<Entity>` field pointing at such an entity is stored as `None`, and the rest
    /// of the component written; a required `Entity` field is skipped as with
    /// [`Skip`](Self::Skip).
    StoreNone,
}

impl IdMap {
    pub(crate) fn new() -> Self {
        IdMap {
            next: 1,
            ..Default::default()
        }
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut m = IdMap::new();
        m.by_entity.reserve(n);
        m.by_id.reserve(n);
        m
    }

    pub(crate) fn insert(&mut self, e: Entity, id: u64) {
        self.by_entity.insert(e, id);
        self.by_id.insert(id, e);
        self.next = self.next.max(id.saturating_add(1));
    }

    pub(crate) fn allocate(&mut self) -> u64 {
        let id = self.next;
        self.next += 1;
        id
    }

    pub(crate) fn remove_entity(&mut self, e: Entity) -> Option<u64> {
        let id = self.by_entity.remove(&e)?;
        self.by_id.remove(&id);
        Some(id)
    }

    pub(crate) fn id(&self, e: Entity) -> Option<u64> {
        self.by_entity.get(&e).copied()
    }

    pub(crate) fn entity(&self, id: u64) -> Option<Entity> {
        self.by_id.get(&id).copied()
    }

    /// All ids, sorted.
    pub(crate) fn sorted_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.by_id.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Every persisted entity.
    pub(crate) fn entities(&self) -> impl Iterator<Item = Entity> + '_ {
        self.by_id.values().copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

impl RefMap for IdMap {
    fn persistent_id(&self, bits: u64) -> Option<u64> {
        self.id(Entity::try_from_bits(bits)?)
    }
    fn resolve(&self, id: u64) -> Option<u64> {
        self.entity(id).map(Entity::to_bits)
    }
    fn unmapped_as_none(&self) -> bool {
        self.unmapped_as_none
    }
}
