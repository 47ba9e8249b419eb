//! Loads that behave as bevy users expect: the hierarchy is complete when `load` returns;
//! loading a file twice is refused (Add), or replaces (Replace), or copies (Renumber);
//! snapshots give the source world its ids; in-memory checkpoints roll back.

use bevy_ecs::hierarchy::{ChildOf, Children};
use bevy_ecs::prelude::*;
use h5pom_ecs::{EcsError, H5Sync, LoadMode, Persist, PersistentId, Registry};

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Hp {
    hp: i32,
}

#[derive(Resource, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Turn {
    n: u32,
}

fn registry() -> Registry {
    Registry::new()
        .component::<Hp>()
        .resource::<Turn>()
        .hierarchy()
}

fn world() -> (World, Entity) {
    let mut w = World::new();
    w.insert_resource(Turn { n: 1 });
    let parent = w.spawn((Persist, Hp { hp: 10 })).id();
    for hp in [1, 2, 3] {
        w.spawn((Persist, Hp { hp }, ChildOf(parent)));
    }
    (w, parent)
}

/// (persistent id, hp, parent's persistent id), sorted.
fn state(w: &mut World) -> Vec<(u64, i32, Option<u64>)> {
    let mut q = w.query::<(&PersistentId, &Hp, Option<&ChildOf>)>();
    let mut v: Vec<_> = q
        .iter(w)
        .map(|(p, h, c)| {
            (
                p.0,
                h.hp,
                c.map(|c| w.get::<PersistentId>(c.parent()).unwrap().0),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn load_modes_children_and_snapshot_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut src, parent) = world();
    registry().snapshot(&mut src, &path).unwrap();
    // The snapshot handed out ids and the source world keeps them.
    let ids: Vec<u64> = src
        .query::<&PersistentId>()
        .iter(&src)
        .map(|p| p.0)
        .collect();
    assert!(ids.iter().all(|&id| id != 0), "{ids:?}");
    let want = state(&mut src);

    let mut w = World::new();
    registry().load(&mut w, &path).unwrap();
    assert_eq!(state(&mut w), want);
    // Children are there as soon as load returns (no world.flush() by the caller).
    let loaded_parent = w
        .query::<(Entity, &Hp)>()
        .iter(&w)
        .find(|(_, h)| h.hp == 10)
        .unwrap()
        .0;
    assert_eq!(w.get::<Children>(loaded_parent).map(|c| c.len()), Some(3));
    let _ = parent;

    // A second additive load is refused, and changes nothing.
    let before = w.entities().len();
    match registry().load(&mut w, &path) {
        Err(EcsError::AlreadyLoaded { taken, .. }) => assert_eq!(taken, 4),
        other => panic!("second load: {other:?}"),
    }
    assert_eq!(w.entities().len(), before);
    assert_eq!(state(&mut w), want);

    // Replace: the world's persisted entities go, the file's come (same ids).
    for mut h in w.query::<&mut Hp>().iter_mut(&mut w) {
        h.hp += 100;
    }
    w.spawn((Persist, PersistentId(77), Hp { hp: 77 }));
    registry()
        .load_with(&mut w, &path, LoadMode::Replace)
        .unwrap();
    assert_eq!(state(&mut w), want);

    // Renumber: a second copy with new ids and its own hierarchy.
    let r = registry()
        .load_with(&mut w, &path, LoadMode::Renumber)
        .unwrap();
    assert_eq!(r.renumbered, 4);
    let s = state(&mut w);
    assert_eq!(s.len(), 8);
    let parents: std::collections::HashSet<u64> = s.iter().filter_map(|r| r.2).collect();
    assert_eq!(parents.len(), 2, "each copy has its own parent: {s:?}");
}

#[test]
fn checkpoints_roll_back_and_a_live_sync_keeps_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.h5");
    let (mut w, _) = world();
    w.insert_resource(H5Sync::create(&path, &registry()).unwrap());
    let flush = |w: &mut World| {
        w.resource_scope(|w, mut s: Mut<H5Sync>| s.flush_now(w).unwrap());
        w.clear_trackers();
    };
    flush(&mut w);
    let cp = registry().checkpoint(&mut w).unwrap();
    assert_eq!(cp.entities(), 4);
    let want = state(&mut w);
    // Undo everything done after the checkpoint, twice.
    for round in 0..2 {
        for mut h in w.query::<&mut Hp>().iter_mut(&mut w) {
            h.hp = -1;
        }
        w.spawn((Persist, Hp { hp: 500 }));
        w.resource_mut::<Turn>().n = 9;
        flush(&mut w);
        registry().rollback(&mut w, &cp).unwrap();
        assert_eq!(state(&mut w), want, "round {round}");
        assert_eq!(w.resource::<Turn>().n, 1);
        flush(&mut w);
    }
    // The synced file holds the rolled-back world, with the same ids.
    w.remove_resource::<H5Sync>();
    let mut again = World::new();
    registry().load(&mut again, &path).unwrap();
    assert_eq!(state(&mut again), want);
}
