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
    by_id: IdIndex,
    /// The next id to hand out (ids start at 1).
    pub(crate) next: u64,
    /// Writers sharing the id space, and this one's lane: it hands out only ids whose
    /// `(id - 1) % lanes == lane` (1 and 0 for a single writer).
    pub(crate) lanes: u64,
    pub(crate) lane: u64,
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
            lanes: 1,
            ..Default::default()
        }
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut m = IdMap::new();
        m.by_entity.reserve(n);
        m
    }

    pub(crate) fn insert(&mut self, e: Entity, id: u64) {
        self.by_entity.insert(e, id);
        self.by_id.insert(id, e);
        self.next = self.next.max(id.saturating_add(1));
    }

    pub(crate) fn allocate(&mut self) -> u64 {
        let lanes = self.lanes.max(1);
        let at = (self.next.max(1) - 1) % lanes;
        let id = self
            .next
            .max(1)
            .saturating_add((self.lane + lanes - at) % lanes);
        self.next = id.saturating_add(1);
        id
    }

    /// Hands out only the ids of lane `lane` of `lanes` (ids `lane + 1`, `lane + 1 + lanes`,
    /// …), none below `floor`.
    pub(crate) fn set_lane(&mut self, lanes: u64, lane: u64, floor: u64) {
        self.lanes = lanes.max(1);
        self.lane = lane % self.lanes;
        self.next = self.next.max(floor);
    }

    pub(crate) fn remove_entity(&mut self, e: Entity) -> Option<u64> {
        let id = self.by_entity.remove(&e)?;
        self.by_id.remove(id);
        Some(id)
    }

    pub(crate) fn id(&self, e: Entity) -> Option<u64> {
        self.by_entity.get(&e).copied()
    }

    pub(crate) fn entity(&self, id: u64) -> Option<Entity> {
        self.by_id.get(id)
    }

    /// All ids, sorted.
    pub(crate) fn sorted_ids(&self) -> Vec<u64> {
        self.by_id.sorted_ids()
    }

    /// Every persisted entity.
    pub(crate) fn entities(&self) -> impl Iterator<Item = Entity> + '_ {
        self.by_id.entities()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len
    }
}

/// Persistent id → a value (an entity; a table row). Ids are handed out from 1 upwards, so
/// most are small and dense: a
/// vector indexed by id holds them (one cache-friendly load per lookup; a hash map scatters
/// sequential ids over memory, and a reload of 1M rows spent a fifth of its time in its cache
/// misses). Ids far beyond the number held (a file's, possibly hostile) go to a hash map, so
/// the vector never has more than about twice as many slots as the most ids held at once.
#[derive(Debug)]
pub(crate) struct IdIndex<V = Entity> {
    /// `dense[id]`, for ids below its length.
    dense: Vec<Option<V>>,
    /// Ids at or above `dense.len()`.
    sparse: FxHashMap<u64, V>,
    len: usize,
}

impl<V> Default for IdIndex<V> {
    fn default() -> Self {
        IdIndex {
            dense: Vec::new(),
            sparse: FxHashMap::default(),
            len: 0,
        }
    }
}

impl<V: Copy> IdIndex<V> {
    /// Slots the vector may have: twice the ids held, plus some room.
    fn dense_limit(&self) -> usize {
        self.len.saturating_add(1024).saturating_mul(2)
    }

    pub(crate) fn get(&self, id: u64) -> Option<V> {
        match usize::try_from(id).ok().and_then(|i| self.dense.get(i)) {
            Some(slot) => *slot,
            None => self.sparse.get(&id).copied(),
        }
    }

    pub(crate) fn insert(&mut self, id: u64, e: V) {
        let i = usize::try_from(id).unwrap_or(usize::MAX);
        if i >= self.dense.len() && i < self.dense_limit() {
            // Grow (at least doubling) and move the sparse ids the vector now covers.
            let old = self.dense.len();
            let new = (i + 1).max(old * 2).min(self.dense_limit()).max(i + 1);
            self.dense.resize(new, None);
            if !self.sparse.is_empty() {
                let moved: Vec<(u64, V)> = self
                    .sparse
                    .iter()
                    .filter(|&(&k, _)| usize::try_from(k).is_ok_and(|k| k < new))
                    .map(|(&k, &v)| (k, v))
                    .collect();
                for (k, v) in moved {
                    self.sparse.remove(&k);
                    self.dense[k as usize] = Some(v);
                }
            }
        }
        let previous = match self.dense.get_mut(i) {
            Some(slot) => slot.replace(e),
            None => self.sparse.insert(id, e),
        };
        if previous.is_none() {
            self.len += 1;
        }
    }

    /// Removes `id`, returning its value.
    pub(crate) fn remove(&mut self, id: u64) -> Option<V> {
        let previous = match usize::try_from(id).ok().and_then(|i| self.dense.get_mut(i)) {
            Some(slot) => slot.take(),
            None => self.sparse.remove(&id),
        };
        if previous.is_some() {
            self.len -= 1;
        }
        previous
    }

    /// Forgets every id.
    pub(crate) fn clear(&mut self) {
        self.dense.clear();
        self.sparse.clear();
        self.len = 0;
    }

    fn sorted_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = Vec::with_capacity(self.len);
        v.extend(
            self.dense
                .iter()
                .enumerate()
                .filter(|(_, e)| e.is_some())
                .map(|(i, _)| i as u64),
        );
        let mut sparse: Vec<u64> = self.sparse.keys().copied().collect();
        sparse.sort_unstable();
        v.extend(sparse);
        v
    }

    fn entities(&self) -> impl Iterator<Item = V> + '_ {
        self.dense
            .iter()
            .flatten()
            .copied()
            .chain(self.sparse.values().copied())
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

#[cfg(test)]
mod index_tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The dense/sparse index answers as a plain map does, through inserts, removals,
    /// re-inserts and ids from dense (sequential), near and far (hostile) ranges.
    #[test]
    fn the_id_index_behaves_as_a_map() {
        let mut idx = IdIndex::default();
        let mut reference: BTreeMap<u64, Entity> = BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..20_000u32 {
            let r = next();
            let id = match r % 10 {
                0 => r >> 4,                     // anywhere in u64 (sparse)
                1 => 1_000_000 + (r >> 40) % 50, // far, clustered
                2 => u64::MAX - (r >> 60),       // the very end
                _ => (r >> 32) % 4_000,          // dense
            };
            let e = Entity::from_raw_u32(step + 1).unwrap();
            if r % 7 == 0 {
                idx.remove(id);
                reference.remove(&id);
            } else {
                idx.insert(id, e);
                reference.insert(id, e);
            }
            if step % 997 == 0 {
                assert_eq!(idx.len, reference.len());
                assert_eq!(
                    idx.sorted_ids(),
                    reference.keys().copied().collect::<Vec<_>>()
                );
                for (&k, &v) in &reference {
                    assert_eq!(idx.get(k), Some(v), "id {k}");
                }
            }
            assert_eq!(idx.get(id), reference.get(&id).copied());
        }
        assert!(
            idx.dense.len() <= idx.dense_limit(),
            "the vector grows with the ids held, not with their values"
        );
        let mut all: Vec<Entity> = idx.entities().collect();
        let mut want: Vec<Entity> = reference.values().copied().collect();
        all.sort();
        want.sort();
        assert_eq!(all, want);
    }
}
