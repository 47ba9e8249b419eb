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

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Cell {
    x: f64,
    tag: String,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Aim {
    #[h5pom(entity)]
    at: Option<Entity>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Owner {
    #[h5pom(entity)]
    by: Entity,
}

/// A persisted entity's (id, Hp, Cell, Aim target id, Owner id, parent id).
type Row = (
    u64,
    Option<i32>,
    Option<Cell>,
    Option<Option<u64>>,
    Option<u64>,
    Option<u64>,
);

fn rows(w: &mut World) -> Vec<Row> {
    let pid = |w: &World, e: Entity| w.get::<PersistentId>(e).map(|p| p.0);
    let es: Vec<Entity> = w
        .query_filtered::<Entity, With<Persist>>()
        .iter(w)
        .collect();
    let mut v: Vec<Row> = es
        .into_iter()
        .map(|e| {
            (
                pid(w, e).unwrap(),
                w.get::<Hp>(e).map(|h| h.hp),
                w.get::<Cell>(e).cloned(),
                w.get::<Aim>(e).map(|a| a.at.and_then(|t| pid(w, t))),
                w.get::<Owner>(e).and_then(|o| pid(w, o.by)),
                w.get::<ChildOf>(e).and_then(|c| pid(w, c.parent())),
            )
        })
        .collect();
    v.sort_by_key(|r| r.0);
    v
}

#[test]
fn a_subset_loads_only_its_entities_and_links_to_what_the_world_has() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let reg = Registry::new()
        .component::<Hp>()
        .table::<Cell>()
        .component::<Aim>()
        .component::<Owner>()
        .resource::<Turn>()
        .hierarchy();
    // 200 entities in a table (rows far apart in the file), a parent with children, and
    // references between entities.
    let mut src = World::new();
    src.insert_resource(Turn { n: 7 });
    let cells: Vec<Entity> = (0..200)
        .map(|i| {
            let cell = Cell {
                x: f64::from(i) * 0.5,
                tag: format!("c{i}"),
            };
            src.spawn((Persist, cell)).id()
        })
        .collect();
    let boss = src.spawn((Persist, Hp { hp: 99 })).id();
    let grunt = src
        .spawn((
            Persist,
            Hp { hp: 5 },
            ChildOf(boss),
            Aim {
                at: Some(cells[150]),
            },
            Owner { by: cells[3] },
        ))
        .id();
    src.entity_mut(cells[7]).insert(ChildOf(boss));
    src.entity_mut(cells[9]).insert(Aim { at: Some(boss) });
    reg.snapshot(&mut src, &path).unwrap();
    let full = rows(&mut src);
    let id = |e: Entity| src.get::<PersistentId>(e).unwrap().0;
    let (boss_id, grunt_id) = (id(boss), id(grunt));
    let cell_id: Vec<u64> = cells.iter().map(|&e| id(e)).collect();

    // One entity from a table, with an optional reference to an entity that is not loaded:
    // only that row, the reference as None, no resource.
    let mut w = World::new();
    let r = reg
        .load_ids(&mut w, &path, [cell_id[9]], LoadMode::Add)
        .unwrap();
    assert_eq!((r.entities, r.resources), (1, 0));
    assert!(w.get_resource::<Turn>().is_none());
    let got = rows(&mut w);
    let want = full.iter().find(|r| r.0 == cell_id[9]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, want.2);
    assert_eq!(got[0].3, Some(None), "the target is not loaded: None");

    // A required reference to an entity outside the subset and not in the world fails.
    let mut w = World::new();
    let e = reg
        .load_ids(&mut w, &path, [grunt_id], LoadMode::Add)
        .unwrap_err();
    assert!(matches!(e, EcsError::Component { .. }), "{e}");

    // With the targets loaded first, the subset links to them (references and parent).
    let mut w = World::new();
    reg.load_ids(
        &mut w,
        &path,
        [boss_id, cell_id[3], cell_id[150]],
        LoadMode::Add,
    )
    .unwrap();
    reg.load_ids(
        &mut w,
        &path,
        [grunt_id, cell_id[7], cell_id[9]],
        LoadMode::Add,
    )
    .unwrap();
    let got = rows(&mut w);
    let want: Vec<Row> = full
        .iter()
        .filter(|r| {
            [
                boss_id,
                grunt_id,
                cell_id[3],
                cell_id[7],
                cell_id[9],
                cell_id[150],
            ]
            .contains(&r.0)
        })
        .cloned()
        .collect();
    assert_eq!(got, want);
    let b = w
        .query::<(Entity, &PersistentId)>()
        .iter(&w)
        .find(|(_, p)| p.0 == boss_id)
        .unwrap()
        .0;
    assert_eq!(w.get::<Children>(b).map(|c| c.len()), Some(2));

    // Ids the file lacks: an error, nothing loaded.
    let mut w = World::new();
    let e = reg
        .load_ids(&mut w, &path, [cell_id[0], 999_999], LoadMode::Add)
        .unwrap_err();
    assert!(
        matches!(
            e,
            EcsError::NotInFile {
                missing: 1,
                first: 999_999,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(w.query::<&Persist>().iter(&w).count(), 0);

    // A replacing subset load reloads those entities only; the boss's children outside the
    // subset stay and are attached to the reloaded boss.
    let mut w = World::new();
    reg.load(&mut w, &path).unwrap();
    let before = rows(&mut w);
    for (mut hp, mut cell) in w
        .query::<(Option<&mut Hp>, Option<&mut Cell>)>()
        .iter_mut(&mut w)
    {
        if let Some(h) = hp.as_mut() {
            h.hp = -1;
        }
        if let Some(c) = cell.as_mut() {
            c.x = -1.0;
        }
    }
    reg.load_ids(&mut w, &path, [boss_id, cell_id[40]], LoadMode::Replace)
        .unwrap();
    let after = rows(&mut w);
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        if a.0 == boss_id || a.0 == cell_id[40] {
            assert_eq!(a, b, "reloaded from the file");
        } else {
            assert_eq!((a.0, a.3, a.4, a.5), (b.0, b.3, b.4, b.5), "links kept");
            assert!(a.1 == Some(-1) || a.2.as_ref().is_some_and(|c| c.x == -1.0));
        }
    }
    // Additively, ids in the world already are refused.
    let e = reg
        .load_ids(&mut w, &path, [cell_id[1]], LoadMode::Add)
        .unwrap_err();
    assert!(matches!(e, EcsError::AlreadyLoaded { .. }), "{e}");
}
