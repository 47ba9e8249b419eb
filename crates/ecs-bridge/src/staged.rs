//! Loading with one archetype move per entity: every registered type decodes its stored
//! components first ([`Rows`]), then [`insert_all`] inserts each entity's components of all
//! types together with one dynamic insert, instead of one `insert_batch` per type (which moves
//! every entity's row once per type).

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use bevy_ecs::component::ComponentId;
use bevy_ecs::prelude::*;
use bevy_ecs::ptr::OwningPtr;
use smallvec::SmallVec;

/// Decoded components of one type, waiting to be inserted.
pub(crate) trait Staged {
    /// The component's id in the world.
    fn component(&self) -> ComponentId;
    /// How many components.
    fn len(&self) -> usize;
    /// The entity row `i` belongs to.
    fn entity(&self, i: usize) -> Entity;
    /// Hands row `i`'s value over: the caller moves it into the world, and it is never
    /// dropped or read here again. Each row is taken at most once.
    fn take(&mut self, i: usize) -> OwningPtr<'_>;
}

/// The decoded components of type `C`, one per entity.
pub(crate) struct Rows<C: Component> {
    id: ComponentId,
    entities: Vec<Entity>,
    values: Vec<ManuallyDrop<C>>,
    taken: Vec<bool>,
}

impl<C: Component> Rows<C> {
    /// Stages `batch` (registering `C` in `world` if needed).
    pub(crate) fn new(world: &mut World, batch: Vec<(Entity, C)>) -> Self {
        let id = world.register_component::<C>();
        let n = batch.len();
        let mut entities = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        for (e, c) in batch {
            entities.push(e);
            values.push(ManuallyDrop::new(c));
        }
        Rows {
            id,
            entities,
            values,
            taken: vec![false; n],
        }
    }
}

impl<C: Component> Staged for Rows<C> {
    fn component(&self) -> ComponentId {
        self.id
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn entity(&self, i: usize) -> Entity {
        self.entities[i]
    }

    fn take(&mut self, i: usize) -> OwningPtr<'_> {
        assert!(!self.taken[i], "a staged component is taken twice");
        self.taken[i] = true;
        let value: &mut C = &mut self.values[i];
        // SAFETY: `value` is an initialized, aligned `C` that lives (unmoved: the vector is
        // borrowed) as long as the returned pointer; marked taken, it is neither dropped nor
        // read by `self` again, so ownership passes to whoever consumes the pointer.
        unsafe { OwningPtr::new(NonNull::from(value).cast()) }
    }
}

impl<C: Component> Drop for Rows<C> {
    fn drop(&mut self) {
        for (v, &taken) in self.values.iter_mut().zip(&self.taken) {
            if !taken {
                // SAFETY: a value not taken is still owned here and dropped exactly once.
                unsafe { ManuallyDrop::drop(v) };
            }
        }
    }
}

/// `batch` staged (see [`ComponentSync::stage`](crate::component::ComponentSync::stage)).
pub(crate) fn stage<C: Component>(
    world: &mut World,
    batch: Vec<(Entity, C)>,
) -> Option<Box<dyn Staged>> {
    Some(Box::new(Rows::new(world, batch)))
}

/// Inserts every staged component: each entity gets all of its components of all types with
/// one dynamic insert (one archetype move). Returns how many components were inserted.
/// Components of an entity that no longer exists are dropped.
pub(crate) fn insert_all(world: &mut World, mut stages: Vec<Box<dyn Staged + '_>>) -> usize {
    // Sorted component ids let bevy reuse one dynamic bundle for every entity alike.
    stages.sort_by_key(|s| s.component());
    let n = stages.len();
    let Some(width) = stages
        .iter()
        .flat_map(|s| (0..s.len()).map(|i| s.entity(i).index_u32() as usize + 1))
        .max()
    else {
        return 0;
    };
    // Per entity index: each stage's row (u32::MAX: none) and the entity.
    let mut rows = vec![u32::MAX; width * n];
    let mut entities: Vec<Option<Entity>> = vec![None; width];
    for (k, s) in stages.iter().enumerate() {
        for i in 0..s.len() {
            let e = s.entity(i);
            let x = e.index_u32() as usize;
            rows[x * n + k] = u32::try_from(i).unwrap_or(u32::MAX);
            entities[x] = Some(e);
        }
    }
    let mut inserted = 0;
    let mut ids: SmallVec<[ComponentId; 8]> = SmallVec::new();
    for (x, e) in entities.iter().enumerate() {
        let Some(e) = *e else {
            continue;
        };
        let Ok(mut target) = world.get_entity_mut(e) else {
            continue;
        };
        ids.clear();
        let mut ptrs: SmallVec<[OwningPtr<'_>; 8]> = SmallVec::new();
        for (k, s) in stages.iter_mut().enumerate() {
            let i = rows[x * n + k];
            if i != u32::MAX {
                ids.push(s.component());
                ptrs.push(s.take(i as usize));
            }
        }
        inserted += ptrs.len();
        // SAFETY: every id is the `ComponentId` its stage registered in this world for its
        // type `C`, the ids are distinct (one stage per type), and each pointer, in the same
        // order, points to a `C` handed over by `take`, which the insert moves from.
        unsafe { target.insert_by_ids(&ids, ptrs.into_iter()) };
    }
    inserted
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its drops.
    #[derive(Component)]
    struct Counted(Arc<AtomicUsize>, u32);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[derive(Component, Debug, PartialEq)]
    struct Plain(u64);

    #[test]
    fn each_entity_gets_its_components_once_and_nothing_leaks() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut world = World::new();
        let es: Vec<Entity> = (0..5).map(|_| world.spawn_empty().id()).collect();
        let gone = es[4];
        world.despawn(gone);
        // Entity 1 has only `Plain`, entity 3 appears twice in `Counted` (the later row wins,
        // the earlier is dropped), the despawned entity's components are dropped.
        let counted = Rows::new(
            &mut world,
            vec![
                (es[0], Counted(drops.clone(), 0)),
                (es[3], Counted(drops.clone(), 1)),
                (es[2], Counted(drops.clone(), 2)),
                (es[3], Counted(drops.clone(), 3)),
                (gone, Counted(drops.clone(), 4)),
            ],
        );
        let plain = Rows::new(
            &mut world,
            vec![(es[1], Plain(1)), (es[0], Plain(0)), (gone, Plain(4))],
        );
        let stages: Vec<Box<dyn Staged>> = vec![Box::new(counted), Box::new(plain)];
        let inserted = insert_all(&mut world, stages);
        assert_eq!(inserted, 5);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            2,
            "the replaced row and the orphan"
        );
        assert_eq!(world.get::<Counted>(es[0]).map(|c| c.1), Some(0));
        assert_eq!(world.get::<Plain>(es[0]), Some(&Plain(0)));
        assert_eq!(world.get::<Counted>(es[1]).map(|c| c.1), None);
        assert_eq!(world.get::<Plain>(es[1]), Some(&Plain(1)));
        assert_eq!(world.get::<Counted>(es[2]).map(|c| c.1), Some(2));
        assert_eq!(world.get::<Counted>(es[3]).map(|c| c.1), Some(3));
        assert_eq!(world.get::<Plain>(es[3]), None);
        drop(world);
        assert_eq!(drops.load(Ordering::Relaxed), 5, "every value dropped once");
    }
}
