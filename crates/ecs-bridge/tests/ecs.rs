//! The bridge end to end: per-tick flushes, removals, despawns, references, hierarchy,
//! resources, selective persistence, snapshots, reloads and schema evolution.

use bevy_ecs::hierarchy::{ChildOf, Children};
use bevy_ecs::prelude::*;
use h5pom_ecs::{EcsError, FlushPolicy, H5Sync, Persist, PersistentId, Registry};
use h5pom_store::{File, Schema};

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Person {
    name: String,
    age: u32,
}

#[derive(Component, h5pom_derive::Object, Clone, Copy, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Pos {
    x: f64,
    y: f64,
    tag: Option<i32>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Follows {
    target: Entity,
    backup: Option<Entity>,
}

#[derive(Resource, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Clock {
    step: u64,
    dt: f64,
}

fn registry() -> Registry {
    Registry::new()
        .component::<Person>()
        .table::<Pos>()
        .component::<Follows>()
        .resource::<Clock>()
        .hierarchy()
}

fn setup(path: &std::path::Path) -> (World, Schedule) {
    let mut world = World::new();
    world.insert_resource(H5Sync::create(path, &registry()).unwrap());
    let mut schedule = Schedule::default();
    h5pom_ecs::add_flush_system(&mut schedule);
    (world, schedule)
}

fn tick(world: &mut World, schedule: &mut Schedule) {
    schedule.run(world);
    world.clear_trackers();
}

fn stats(world: &World) -> h5pom_ecs::FlushStats {
    world.resource::<H5Sync>().last_flush()
}

fn people(world: &mut World) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = world
        .query::<&Person>()
        .iter(world)
        .map(|p| (p.name.clone(), p.age))
        .collect();
    v.sort();
    v
}

#[test]
fn seed_example_as_ecs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path);
    let joe = world
        .spawn((
            Persist,
            Person {
                name: "Joe".into(),
                age: 25,
            },
        ))
        .id();
    tick(&mut world, &mut schedule);
    assert_eq!(stats(&world).components, 1);
    let id = world.get::<PersistentId>(joe).unwrap().0;
    assert_ne!(id, 0);
    world.get_mut::<Person>(joe).unwrap().age = 23;
    tick(&mut world, &mut schedule);
    assert_eq!(stats(&world).components, 1);
    // The file is readable with the plain store while the sync holds it open.
    let f = File::open_read_only(&path, Schema::new()).unwrap();
    let g = f.root().folder("ecs").unwrap().folder("entities").unwrap();
    let ent = g
        .folder(&format!("{:x}", id / 1024))
        .unwrap()
        .folder(&id.to_string())
        .unwrap();
    assert_eq!(ent.attr::<u32>("Person.age").unwrap(), Some(23));
    assert_eq!(
        ent.attr::<String>("Person.name").unwrap().as_deref(),
        Some("Joe")
    );
    drop(f);
    world.remove_resource::<H5Sync>();

    let mut again = World::new();
    let report = registry().load(&mut again, &path).unwrap();
    assert_eq!(report.entities, 1);
    assert_eq!(people(&mut again), [("Joe".to_string(), 23)]);
    let pid = again.query::<&PersistentId>().single(&again).unwrap();
    assert_eq!(pid.0, id, "persistent ids survive a reload");
}

#[test]
fn idle_ticks_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path);
    for i in 0..100 {
        world.spawn((
            Persist,
            Pos {
                x: i as f64,
                y: 0.0,
                tag: None,
            },
        ));
    }
    tick(&mut world, &mut schedule);
    assert!(stats(&world).wrote);
    // The crash-safe pair's second slot catches up with the first.
    tick(&mut world, &mut schedule);
    assert!(stats(&world).wrote);
    assert_eq!(stats(&world).spawned, 100);
    let flushes = world.resource::<H5Sync>().flushes();
    let slots = h5pom_ecs::slot_paths(&path);
    let read_all = || [&path, &slots[0], &slots[1]].map(|p| std::fs::read(p).unwrap());
    let before = read_all();
    for _ in 0..5 {
        tick(&mut world, &mut schedule);
        assert!(!stats(&world).wrote, "{:?}", stats(&world));
    }
    assert_eq!(world.resource::<H5Sync>().flushes(), flushes);
    assert!(read_all() == before, "an idle tick changed the file");
}

#[test]
fn removals_and_despawns_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path);
    let a = world
        .spawn((
            Persist,
            Person {
                name: "A".into(),
                age: 1,
            },
            Pos {
                x: 1.0,
                y: 2.0,
                tag: Some(7),
            },
        ))
        .id();
    let b = world
        .spawn((
            Persist,
            Person {
                name: "B".into(),
                age: 2,
            },
            Pos {
                x: 3.0,
                y: 4.0,
                tag: None,
            },
        ))
        .id();
    let c = world
        .spawn((
            Persist,
            Person {
                name: "C".into(),
                age: 3,
            },
        ))
        .id();
    world.spawn(Person {
        name: "not persisted".into(),
        age: 99,
    });
    tick(&mut world, &mut schedule);
    world.entity_mut(a).remove::<Person>();
    world.despawn(b);
    world.entity_mut(c).remove::<Persist>();
    tick(&mut world, &mut schedule);
    let s = stats(&world);
    assert_eq!(s.removed, 1, "{s:?}");
    assert_eq!(s.despawned, 2, "{s:?}");
    world.remove_resource::<H5Sync>();

    let mut again = World::new();
    let report = registry().load(&mut again, &path).unwrap();
    assert_eq!(report.entities, 1);
    assert!(people(&mut again).is_empty());
    let pos: Vec<Pos> = again.query::<&Pos>().iter(&again).copied().collect();
    assert_eq!(
        pos,
        [Pos {
            x: 1.0,
            y: 2.0,
            tag: Some(7)
        }]
    );
}

#[test]
fn references_hierarchy_and_resources_survive_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path);
    world.insert_resource(Clock {
        step: 41,
        dt: 0.125,
    });
    let parent = world
        .spawn((
            Persist,
            Person {
                name: "parent".into(),
                age: 50,
            },
        ))
        .id();
    let kid1 = world
        .spawn((
            Persist,
            Person {
                name: "kid1".into(),
                age: 5,
            },
            ChildOf(parent),
        ))
        .id();
    let kid2 = world
        .spawn((
            Persist,
            Person {
                name: "kid2".into(),
                age: 7,
            },
            ChildOf(parent),
        ))
        .id();
    world.spawn((
        Persist,
        Follows {
            target: kid1,
            backup: Some(kid2),
        },
    ));
    world.spawn((
        Persist,
        Follows {
            target: parent,
            backup: None,
        },
    ));
    tick(&mut world, &mut schedule);
    world.resource_mut::<Clock>().step = 42;
    tick(&mut world, &mut schedule);
    assert_eq!(stats(&world).resources, 1);
    world.remove_resource::<H5Sync>();

    // Load alongside an unrelated entity so that new Entity values differ from the old ones.
    let mut again = World::new();
    again.spawn_batch((0..10).map(|i| Person {
        name: format!("x{i}"),
        age: i,
    }));
    registry().load(&mut again, &path).unwrap();
    assert_eq!(
        *again.resource::<Clock>(),
        Clock {
            step: 42,
            dt: 0.125
        }
    );
    let name = |w: &World, e: Entity| w.get::<Person>(e).unwrap().name.clone();
    let mut follows: Vec<(String, Option<String>)> = again
        .query::<&Follows>()
        .iter(&again)
        .map(|f| (name(&again, f.target), f.backup.map(|b| name(&again, b))))
        .collect();
    follows.sort();
    assert_eq!(
        follows,
        [
            ("kid1".to_string(), Some("kid2".to_string())),
            ("parent".to_string(), None)
        ]
    );
    let (p, children) = again.query::<(Entity, &Children)>().single(&again).unwrap();
    assert_eq!(name(&again, p), "parent");
    let mut kids: Vec<String> = children.iter().map(|k| name(&again, k)).collect();
    kids.sort();
    assert_eq!(kids, ["kid1", "kid2"]);
}

#[test]
fn snapshot_is_atomic_and_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.h5");
    let mut world = World::new();
    world.insert_resource(Clock { step: 7, dt: 0.5 });
    for i in 0..50u32 {
        world.spawn((
            Persist,
            Person {
                name: format!("p{i}"),
                age: i,
            },
            Pos {
                x: f64::from(i) / 3.0,
                y: -0.0,
                tag: (i % 3 == 0).then_some(i as i32),
            },
        ));
    }
    std::fs::write(&path, b"old content").unwrap();
    registry().snapshot(&mut world, &path).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
    let mut again = World::new();
    registry().load(&mut again, &path).unwrap();
    let key = |w: &mut World| {
        let mut v: Vec<(u64, String, u32, u64, u64, Option<i32>)> = w
            .query::<(&PersistentId, &Person, &Pos)>()
            .iter(w)
            .map(|(id, p, q)| {
                (
                    id.0,
                    p.name.clone(),
                    p.age,
                    q.x.to_bits(),
                    q.y.to_bits(),
                    q.tag,
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&mut world), key(&mut again));
    assert_eq!(again.resource::<Clock>(), world.resource::<Clock>());
}

#[test]
fn resume_continues_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path);
    world.spawn((
        Persist,
        Person {
            name: "A".into(),
            age: 1,
        },
    ));
    world.insert_resource(Clock { step: 3, dt: 0.5 });
    tick(&mut world, &mut schedule);
    world.remove_resource::<H5Sync>();

    let mut w2 = World::new();
    let (sync, report) = H5Sync::resume(&mut w2, &path, &registry()).unwrap();
    assert_eq!(report.tick, 1);
    w2.insert_resource(sync);
    let mut schedule = Schedule::default();
    h5pom_ecs::add_flush_system(&mut schedule);
    tick(&mut w2, &mut schedule);
    assert!(
        !stats(&w2).wrote,
        "resuming must not rewrite what was loaded: {:?}",
        stats(&w2)
    );
    w2.spawn((
        Persist,
        Person {
            name: "B".into(),
            age: 2,
        },
    ));
    tick(&mut w2, &mut schedule);
    assert_eq!(stats(&w2).components, 1);
    let ids: Vec<u64> = w2.query::<&PersistentId>().iter(&w2).map(|p| p.0).collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    w2.remove_resource::<H5Sync>();
    let mut w3 = World::new();
    registry().load(&mut w3, &path).unwrap();
    assert_eq!(
        people(&mut w3),
        [("A".to_string(), 1), ("B".to_string(), 2)]
    );
}

#[test]
fn flush_policy_every_n_and_manual() {
    let mut world = World::new();
    let mut sync = H5Sync::in_memory(&registry()).unwrap();
    sync.set_policy(FlushPolicy::Every(3));
    world.insert_resource(sync);
    let mut schedule = Schedule::default();
    h5pom_ecs::add_flush_system(&mut schedule);
    let e = world
        .spawn((
            Persist,
            Person {
                name: "A".into(),
                age: 1,
            },
        ))
        .id();
    tick(&mut world, &mut schedule);
    tick(&mut world, &mut schedule);
    assert_eq!(world.resource::<H5Sync>().flushes(), 0);
    // A removal between flushes is not lost even though trackers were cleared.
    world.entity_mut(e).remove::<Person>();
    world.clear_trackers();
    tick(&mut world, &mut schedule);
    assert_eq!(world.resource::<H5Sync>().flushes(), 1);
    world
        .resource_mut::<H5Sync>()
        .set_policy(FlushPolicy::Manual);
    world.entity_mut(e).insert(Person {
        name: "B".into(),
        age: 2,
    });
    tick(&mut world, &mut schedule);
    assert_eq!(world.resource::<H5Sync>().flushes(), 1);
    let s = world
        .resource_scope(|w, mut s: Mut<H5Sync>| s.flush_now(w))
        .unwrap();
    assert_eq!(s.components, 1);
}

#[derive(Component, h5pom_derive::Object, Debug)]
#[h5pom(crate = "h5pom_store", tag = "Person")]
struct PersonV2 {
    name: String,
    age: u32,
    #[h5pom(default)]
    email: String,
    nickname: Option<String>,
}

#[derive(Component, h5pom_derive::Object, Debug)]
#[h5pom(crate = "h5pom_store", tag = "Person")]
struct PersonWrongType {
    name: u64,
}

#[test]
fn schema_evolution_and_type_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path);
    world.spawn((
        Persist,
        Person {
            name: "Joe".into(),
            age: 25,
        },
    ));
    tick(&mut world, &mut schedule);
    world.remove_resource::<H5Sync>();

    let mut w = World::new();
    Registry::new()
        .component::<PersonV2>()
        .load(&mut w, &path)
        .unwrap();
    let p = w.query::<&PersonV2>().single(&w).unwrap();
    assert_eq!(
        (p.name.as_str(), p.age, p.email.as_str(), &p.nickname),
        ("Joe", 25, "", &None)
    );

    let mut w = World::new();
    let err = Registry::new()
        .component::<PersonWrongType>()
        .load(&mut w, &path)
        .unwrap_err();
    match err {
        EcsError::Component {
            component: "Person",
            source: h5pom_store::Error::TypeMismatch { field, .. },
            ..
        } => {
            assert_eq!(field, "Person.name")
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn bad_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, [0u8; 4096]).unwrap();
    let mut w = World::new();
    assert!(matches!(
        registry().load(&mut w, &junk),
        Err(EcsError::Store(h5pom_store::Error::NotHdf5 { .. }))
    ));
    let plain = dir.path().join("plain.h5");
    File::create(&plain, Schema::new()).unwrap();
    assert!(matches!(
        registry().load(&mut w, &plain),
        Err(EcsError::NotEcsFile { .. })
    ));
    let bad_tag = Registry::new().component::<Person>().table::<PersonV2>();
    assert!(matches!(
        H5Sync::in_memory(&bad_tag),
        Err(EcsError::DuplicateTag { .. })
    ));
}
