//! Field kinds bevy users have (fixed-size arrays, enums, nested structs, entity containers,
//! vectors as datasets) through every storage: entity groups, column tables and the history.

use bevy_ecs::prelude::*;
use h5pom_ecs::{H5Sync, History, Persist, PersistentId, Registry};
use h5pom_store::Value;
use h5pom_store::reexports::hdf5;

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Body {
    pos: [f32; 3],
    rot: [f32; 4],
    cells: [i64; 2],
    mass: f64,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Particle {
    pos: [f32; 3],
    vel: Option<[f64; 2]>,
    id: u32,
}

#[derive(Resource, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Clock {
    step: i64,
}

/// bevy's `Transform`, as the `Reflect` support lays it out: `[f32; 3]`, `[x, y, z, w]`.
#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Transform {
    translation: glam::Vec3,
    rotation: glam::Quat,
    scale: glam::Vec3,
}

fn registry() -> Registry {
    Registry::new()
        .component::<Body>()
        .table::<Transform>()
        .table::<Particle>()
        .resource::<Clock>()
}

fn tick(world: &mut World) {
    world
        .resource_scope(|w, mut s: Mut<H5Sync>| s.tick(w))
        .unwrap();
    world.clear_trackers();
}

fn body(i: usize) -> Body {
    let f = i as f32;
    Body {
        pos: [f, f + 0.5, -f],
        rot: [0.0, 0.0, f.sin(), f.cos()],
        cells: [i as i64, -(i as i64)],
        mass: 1.0 + i as f64,
    }
}

fn particle(i: usize, step: i64) -> Particle {
    let f = i as f32 + step as f32 * 100.0;
    Particle {
        pos: [f, f * 2.0, f * 3.0],
        vel: (!i.is_multiple_of(3)).then_some([i as f64, step as f64]),
        id: i as u32,
    }
}

fn bodies(world: &mut World) -> Vec<(u64, Body)> {
    let mut v: Vec<(u64, Body)> = world
        .query::<(&PersistentId, &Body)>()
        .iter(world)
        .map(|(p, b)| (p.0, b.clone()))
        .collect();
    v.sort_by_key(|(p, _)| *p);
    v
}

fn particles(world: &mut World) -> Vec<Particle> {
    let mut v: Vec<Particle> = world.query::<&Particle>().iter(world).cloned().collect();
    v.sort_by_key(|p| p.id);
    v
}

#[test]
fn fixed_arrays_in_groups_tables_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let mut world = World::new();
    world.insert_resource(Clock { step: 0 });
    for i in 0..5 {
        world.spawn((Persist, body(i), particle(i, 0)));
    }
    let t = Transform {
        translation: glam::Vec3::new(1.0, 2.0, 3.0),
        rotation: glam::Quat::from_xyzw(0.0, 0.6, 0.0, 0.8),
        scale: glam::Vec3::splat(2.0),
    };
    world.spawn((Persist, t.clone()));
    let mut sync = H5Sync::create(&path, &registry()).unwrap();
    sync.keep_history(
        &registry(),
        History::new().step_time(|w| (w.resource::<Clock>().step, 0.0)),
    )
    .unwrap();
    world.insert_resource(sync);
    tick(&mut world);
    let first = particles(&mut world);
    world.resource_mut::<Clock>().step = 10;
    let mut q = world.query::<&mut Particle>();
    for mut p in q.iter_mut(&mut world) {
        let i = p.id as usize;
        *p = particle(i, 10);
    }
    // Removing a table row swap-removes it: the moved row keeps its arrays.
    let victim = world
        .query::<(Entity, &Particle)>()
        .iter(&world)
        .find(|(_, p)| p.id == 1)
        .map(|(e, _)| e)
        .unwrap();
    world.entity_mut(victim).remove::<Particle>();
    tick(&mut world);
    let want_bodies = bodies(&mut world);
    let want_particles = particles(&mut world);
    assert_eq!(want_particles.len(), 4);
    world.remove_resource::<H5Sync>();

    // On disk: one 1-D attribute per array field, a `[row, 3]` column in the table.
    let file = hdf5::File::open(&path).unwrap();
    let ents = file.group("ecs/entities").unwrap();
    let shard = ents.group(&ents.member_names().unwrap()[0]).unwrap();
    let g = shard.group(&shard.member_names().unwrap()[0]).unwrap();
    let a = g.attr("Body.pos").unwrap();
    assert_eq!(a.shape(), [3]);
    assert_eq!(
        a.dtype().unwrap().to_descriptor().unwrap(),
        hdf5::types::TypeDescriptor::Float(hdf5::types::FloatSize::U4)
    );
    assert_eq!(g.attr("Body.rot").unwrap().shape(), [4]);
    let col = file.dataset("ecs/tables/Particle/pos").unwrap();
    assert_eq!(col.shape(), [4, 3]);
    assert_eq!(
        file.dataset("ecs/tables/Particle/vel").unwrap().shape(),
        [4, 2]
    );
    let hist = file.dataset("ecs/history/Particle/pos").unwrap();
    assert_eq!(hist.shape()[1..], [5, 3]);
    let rot = file.dataset("ecs/tables/Transform/rotation").unwrap();
    assert_eq!(rot.shape(), [1, 4]);
    assert_eq!(rot.read_raw::<f32>().unwrap(), [0.0, 0.6, 0.0, 0.8]);
    drop((a, g, shard, ents, col, hist, rot, file));

    let mut again = World::new();
    registry().load(&mut again, &path).unwrap();
    assert_eq!(bodies(&mut again), want_bodies);
    assert_eq!(particles(&mut again), want_particles);

    let ts: Vec<Transform> = again.query::<&Transform>().iter(&again).cloned().collect();
    assert_eq!(ts, [t]);

    let mut past = World::new();
    registry().load_at(&mut past, &path, 0).unwrap();
    assert_eq!(particles(&mut past), first);
    let mut now = World::new();
    registry().load_at(&mut now, &path, 10).unwrap();
    assert_eq!(particles(&mut now), want_particles);
    assert_eq!(bodies(&mut now), want_bodies);
    let _ = Value::None;
}

#[derive(h5pom_derive::Field, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Pose {
    x: f64,
    y: f64,
    dir: [f32; 2],
}

#[derive(h5pom_derive::Field, Clone, Copy, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
enum Mode {
    Idle,
    Running,
}

#[derive(h5pom_derive::Field, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
enum Order {
    Wait,
    Go { to: [f32; 2] },
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Agent {
    pose: Pose,
    mode: Mode,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Plan {
    order: Order,
}

#[test]
fn nested_structs_and_enums_in_tables_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let reg = || Registry::new().table::<Agent>().component::<Plan>();
    let mut world = World::new();
    for i in 0..3 {
        let f = i as f64;
        world.spawn((
            Persist,
            Agent {
                pose: Pose {
                    x: f,
                    y: -f,
                    dir: [1.0, f as f32],
                },
                mode: if i == 1 { Mode::Running } else { Mode::Idle },
            },
            Plan {
                order: if i == 2 {
                    Order::Go { to: [3.0, 4.0] }
                } else {
                    Order::Wait
                },
            },
        ));
    }
    world.insert_resource(H5Sync::create(&path, &reg()).unwrap());
    tick(&mut world);
    world.remove_resource::<H5Sync>();
    let file = hdf5::File::open(&path).unwrap();
    assert_eq!(
        file.dataset("ecs/tables/Agent/pose.x").unwrap().shape(),
        [3]
    );
    assert_eq!(
        file.dataset("ecs/tables/Agent/pose.dir").unwrap().shape(),
        [3, 2]
    );
    let modes = file.dataset("ecs/tables/Agent/mode").unwrap();
    assert_eq!(
        modes.dtype().unwrap().to_descriptor().unwrap(),
        hdf5::types::TypeDescriptor::VarLenUnicode
    );
    drop((modes, file));
    let mut again = World::new();
    reg().load(&mut again, &path).unwrap();
    let mut a: Vec<Agent> = again.query::<&Agent>().iter(&again).cloned().collect();
    a.sort_by(|p, q| p.pose.x.total_cmp(&q.pose.x));
    let mut want: Vec<Agent> = world.query::<&Agent>().iter(&world).cloned().collect();
    want.sort_by(|p, q| p.pose.x.total_cmp(&q.pose.x));
    assert_eq!(a, want);
    let mut plans: Vec<String> = again
        .query::<&Plan>()
        .iter(&again)
        .map(|p| format!("{:?}", p.order))
        .collect();
    plans.sort();
    assert_eq!(plans, ["Go { to: [3.0, 4.0] }", "Wait", "Wait"]);

    // A variant with data cannot be a table column: refused when the registry is first
    // used, naming the field.
    let dir2 = tempfile::tempdir().unwrap();
    let reg2 = Registry::new().table::<Plan>();
    let Err(err) = H5Sync::create(dir2.path().join("t.h5"), &reg2) else {
        panic!("a table with an enum with data was accepted");
    };
    let err = err.to_string();
    assert!(
        err.contains("\"order\"") && err.contains("cannot be a table"),
        "{err}"
    );
    // So cannot an array of bool (nor an Option of one).
    let Err(err) = H5Sync::create(dir2.path().join("b.h5"), &Registry::new().table::<Flags>())
    else {
        panic!("a table with a [bool; 2] was accepted");
    };
    let err = err.to_string();
    assert!(
        err.contains("\"on\"") && err.contains("cannot be a table"),
        "{err}"
    );
    // In a group it is one attribute.
    let path = dir2.path().join("g.h5");
    let mut w = World::new();
    w.spawn((
        Persist,
        Flags {
            on: [true, false],
            maybe: Some([false, true]),
        },
    ));
    w.insert_resource(H5Sync::create(&path, &Registry::new().component::<Flags>()).unwrap());
    tick(&mut w);
    w.remove_resource::<H5Sync>();
    let mut again = World::new();
    Registry::new()
        .component::<Flags>()
        .load(&mut again, &path)
        .unwrap();
    let f: Vec<Flags> = again.query::<&Flags>().iter(&again).cloned().collect();
    assert_eq!(
        f,
        [Flags {
            on: [true, false],
            maybe: Some([false, true])
        }]
    );
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Flags {
    on: [bool; 2],
    maybe: Option<[bool; 2]>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Links {
    friends: Vec<Entity>,
    pair: [Entity; 2],
    named: std::collections::BTreeMap<String, Entity>,
    hashed: std::collections::HashMap<String, Entity>,
    #[h5pom(dataset)]
    samples: Vec<f64>,
    #[h5pom(dataset, compression = "zstd:3")]
    counts: Vec<u32>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Pair {
    ends: [Entity; 2],
}

#[test]
fn entity_containers_and_vec_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let reg = || Registry::new().component::<Links>().table::<Pair>();
    let mut world = World::new();
    let a = world.spawn(Persist).id();
    let b = world.spawn(Persist).id();
    let c = world.spawn(Persist).id();
    world.entity_mut(a).insert((
        Links {
            friends: vec![b, c, b],
            pair: [c, a],
            named: [("boss".to_owned(), c)].into(),
            hashed: [("x".to_owned(), b), ("y".to_owned(), a)].into(),
            samples: vec![0.5, 1.5, -2.0],
            counts: (0..100).collect(),
        },
        Pair { ends: [b, c] },
    ));
    world.entity_mut(b).insert(Pair { ends: [a, a] });
    world.insert_resource(H5Sync::create(&path, &reg()).unwrap());
    tick(&mut world);
    // Shrinking the list drops the old items.
    world.get_mut::<Links>(a).unwrap().friends = vec![c];
    tick(&mut world);
    world.remove_resource::<H5Sync>();

    let file = hdf5::File::open(&path).unwrap();
    let ids = file.dataset("ecs/tables/Pair/ends").unwrap();
    assert_eq!(ids.shape(), [2, 2]);
    // The entity group holding `Links`: a dataset, a list family, a 1-D id attribute.
    let ents = file.group("ecs/entities").unwrap();
    let mut found = 0;
    for shard in ents.groups().unwrap() {
        for g in shard.groups().unwrap() {
            if g.link_exists("Links.samples") {
                found += 1;
                let d = g.dataset("Links.samples").unwrap();
                assert_eq!(d.read_raw::<f64>().unwrap(), [0.5, 1.5, -2.0]);
                assert_eq!(g.dataset("Links.counts").unwrap().shape(), [100]);
                assert_eq!(
                    g.attr("Links.friends-count")
                        .unwrap()
                        .read_scalar::<i64>()
                        .unwrap(),
                    1
                );
                assert!(g.attr("Links.friends-1").is_err());
                assert_eq!(g.attr("Links.pair").unwrap().shape(), [2]);
                assert!(g.attr("Links.named-boss").is_ok());
            }
        }
    }
    assert_eq!(found, 1);
    drop((ids, ents, file));

    let mut again = World::new();
    reg().load(&mut again, &path).unwrap();
    let by_id = |w: &mut World| -> std::collections::BTreeMap<u64, Entity> {
        w.query::<(Entity, &PersistentId)>()
            .iter(w)
            .map(|(e, p)| (p.0, e))
            .collect()
    };
    let old = by_id(&mut world);
    let new = by_id(&mut again);
    let map: std::collections::HashMap<Entity, Entity> =
        old.iter().map(|(id, e)| (*e, new[id])).collect();
    let want = world.get::<Links>(a).unwrap().clone();
    let got = again.get::<Links>(map[&a]).unwrap().clone();
    assert_eq!(got.friends, vec![map[&c]]);
    assert_eq!(got.pair, [map[&c], map[&a]]);
    assert_eq!(got.named["boss"], map[&c]);
    assert_eq!(got.hashed["x"], map[&b]);
    assert_eq!(got.hashed["y"], map[&a]);
    assert_eq!(got.samples, want.samples);
    assert_eq!(got.counts, want.counts);
    assert_eq!(again.get::<Pair>(map[&b]).unwrap().ends, [map[&a], map[&a]]);
    assert_eq!(again.get::<Pair>(map[&a]).unwrap().ends, [map[&b], map[&c]]);
}
