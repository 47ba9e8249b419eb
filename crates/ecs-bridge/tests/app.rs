//! `H5PomPlugin` in a bevy `App`: one line persists the world; requests (save, snapshot,
//! load, checkpoint, rollback) are answered by messages; nothing takes the app down (a file
//! that cannot be opened, a dangling reference).
#![cfg(feature = "app")]

use bevy_app::prelude::*;
use bevy_ecs::message::Messages;
use bevy_ecs::prelude::*;
use h5pom_ecs::{
    ComponentsSkipped, EcsError, H5PomDone, H5PomPlugin, H5PomRequest, H5Sync, LoadMode, Persist,
    PersistentId, RefTarget, Registry,
};

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Health {
    hp: i32,
    target: Option<Entity>,
}

fn registry() -> Registry {
    Registry::new().component::<Health>()
}

fn done(app: &mut App) -> Vec<H5PomDone> {
    app.world_mut()
        .resource_mut::<Messages<H5PomDone>>()
        .drain()
        .collect()
}

fn hps(world: &mut World) -> Vec<(u64, i32)> {
    let mut v: Vec<(u64, i32)> = world
        .query::<(&PersistentId, &Health)>()
        .iter(world)
        .map(|(p, h)| (p.0, h.hp))
        .collect();
    v.sort();
    v
}

fn hurt(mut q: Query<&mut Health>) {
    for mut h in &mut q {
        h.hp -= 1;
    }
}

#[test]
fn the_plugin_persists_resumes_and_serves_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("save.h5");
    let mut app = App::new();
    app.add_plugins(H5PomPlugin::new(&path, registry()))
        .add_systems(Update, hurt);
    assert!(matches!(
        &done(&mut app)[..],
        [H5PomDone::Opened { tick: 0, .. }]
    ));
    app.world_mut().spawn((
        Persist,
        Health {
            hp: 10,
            target: None,
        },
    ));
    app.world_mut().spawn((
        Persist,
        Health {
            hp: 20,
            target: None,
        },
    ));
    for _ in 0..3 {
        app.update();
    }
    let want = hps(app.world_mut());
    assert_eq!(want.iter().map(|r| r.1).collect::<Vec<_>>(), [7, 17]);
    assert_eq!(app.world().resource::<H5Sync>().flushes(), 3);

    // Requests: snapshot, checkpoint, rollback, save.
    let snap = dir.path().join("snap.h5");
    app.world_mut()
        .write_message(H5PomRequest::Snapshot(snap.clone()));
    app.world_mut()
        .write_message(H5PomRequest::Checkpoint("before".into()));
    app.update(); // hurt runs first (Update), then the requests (Last)
    let answers = done(&mut app);
    assert!(
        matches!(&answers[..], [H5PomDone::Snapshot { entities: 2, .. }, H5PomDone::Checkpointed(n)] if n == "before"),
        "{answers:?}"
    );
    app.update();
    app.world_mut()
        .write_message(H5PomRequest::Rollback("before".into()));
    app.world_mut().write_message(H5PomRequest::Save);
    // (The schedule's Update hurts once more before Last rolls back.)
    app.update();
    let answers = done(&mut app);
    assert!(
        matches!(
            &answers[..],
            [H5PomDone::RolledBack(_), H5PomDone::Saved { .. }]
        ),
        "{answers:?}"
    );
    let at_checkpoint = hps(app.world_mut());
    assert_eq!(
        at_checkpoint.iter().map(|r| r.1).collect::<Vec<_>>(),
        [6, 16]
    );
    // A second additive load of the snapshot is refused (its ids are in the world).
    app.world_mut().write_message(H5PomRequest::Load {
        path: snap.clone(),
        mode: LoadMode::Add,
    });
    app.world_mut()
        .write_message(H5PomRequest::Rollback("never".into()));
    app.update();
    let answers = done(&mut app);
    assert!(
        matches!(&answers[..], [
            H5PomDone::Failed { error: a, .. },
            H5PomDone::Failed { error: b, .. },
        ] if matches!(**a, EcsError::AlreadyLoaded { .. }) && matches!(**b, EcsError::NoCheckpoint { .. })),
        "{answers:?}"
    );
    // Reload one entity from the snapshot, in place (hurt ran once more before it).
    let first = hps(app.world_mut())[0];
    app.world_mut().write_message(H5PomRequest::LoadIds {
        path: snap.clone(),
        ids: vec![first.0],
        mode: LoadMode::Replace,
    });
    app.update();
    let answers = done(&mut app);
    assert!(
        matches!(&answers[..], [H5PomDone::Loaded { report, .. }] if report.entities == 1),
        "{answers:?}"
    );
    let now = hps(app.world_mut());
    assert_eq!((now[0].0, now[0].1), (first.0, 6), "as in the snapshot");
    assert_eq!(now[1].1, first.1 + 10 - 1, "the other entity is left alone");
    let last = now;
    drop(app);

    // A new app resumes the file: the same entities, the same ids.
    let mut app = App::new();
    app.add_plugins(H5PomPlugin::new(&path, registry()));
    assert!(matches!(
        &done(&mut app)[..],
        [H5PomDone::Opened { entities: 2, .. }]
    ));
    assert_eq!(hps(app.world_mut()), last);
}

#[test]
fn a_file_that_cannot_be_opened_and_a_dangling_reference_do_not_stop_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = App::new();
    app.add_plugins(H5PomPlugin::new(
        dir.path().join("no/such/dir/save.h5"),
        registry(),
    ));
    let answers = done(&mut app);
    assert!(
        matches!(&answers[..], [H5PomDone::Failed { .. }]),
        "{answers:?}"
    );
    assert!(!app.world().contains_resource::<H5Sync>());
    app.world_mut().write_message(H5PomRequest::Save);
    app.update(); // runs, without persistence
    assert!(matches!(
        &done(&mut app)[..],
        [H5PomDone::Failed { error, .. }] if matches!(**error, EcsError::NoSync)
    ));

    let path = dir.path().join("save.h5");
    let mut app = App::new();
    app.add_plugins(H5PomPlugin::new(&path, registry()));
    let ghost = app.world_mut().spawn_empty().id();
    let a = app
        .world_mut()
        .spawn((
            Persist,
            Health {
                hp: 1,
                target: Some(ghost),
            },
        ))
        .id();
    app.world_mut().spawn((
        Persist,
        Health {
            hp: 2,
            target: None,
        },
    ));
    app.update();
    let skipped: Vec<ComponentsSkipped> = app
        .world_mut()
        .resource_mut::<Messages<ComponentsSkipped>>()
        .drain()
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(matches!(
        skipped[0].errors[..],
        [EcsError::DanglingRef {
            state: RefTarget::NotPersisted,
            ..
        }]
    ));
    // The other entity is in the file; the app goes on; once the target is persisted, the
    // skipped component is written.
    app.world_mut().entity_mut(ghost).insert(Persist);
    app.update();
    assert!(app.world().resource::<H5Sync>().skipped().is_empty());
    let pa = app.world().get::<PersistentId>(a).unwrap().0;
    drop(app);
    let mut w = World::new();
    registry().load(&mut w, &path).unwrap();
    let stored = hps(&mut w);
    assert!(stored.contains(&(pa, 1)), "{stored:?}");
    assert_eq!(stored.len(), 2, "the ghost has no Health");
}

#[derive(h5pom_derive::Field, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Pose {
    x: f64,
    y: f64,
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

/// Every field kind in one component (group storage).
#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Kit {
    small: i8,
    big: u64,
    ratio: f32,
    on: bool,
    label: String,
    maybe: Option<f64>,
    never: Option<f64>,
    list: Vec<i32>,
    dict: std::collections::BTreeMap<String, f64>,
    dir: [f32; 3],
    cells: [i64; 2],
    spin: glam::Quat,
    at: glam::Vec3,
    pose: Pose,
    mode: Mode,
    order: Order,
    target: Option<Entity>,
    leader: Entity,
    friends: Vec<Entity>,
    pair: [Entity; 2],
    named: std::collections::BTreeMap<String, Entity>,
    hashed: std::collections::HashMap<String, Entity>,
    #[h5pom(dataset)]
    samples: Vec<f64>,
    grid: ndarray::Array2<f32>,
}

/// The column-table kinds.
#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Row {
    n: u16,
    x: Option<f32>,
    dir: [f32; 3],
    at: glam::Vec3,
    pose: Pose,
    mode: Mode,
    target: Option<Entity>,
}

#[cfg(feature = "reflect")]
#[test]
fn every_field_kind_and_bevy_types_round_trip_through_the_plugin() {
    for background in [false, true] {
        every_field_kind_round_trip(background);
    }
}

#[cfg(feature = "reflect")]
fn every_field_kind_round_trip(background: bool) {
    use bevy_ecs::name::Name;
    use bevy_transform::components::Transform;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.h5");
    let registry = || {
        Registry::new()
            .component::<Kit>()
            .table::<Row>()
            .reflect::<Name>()
            .reflect_table::<Transform>()
            .hierarchy()
    };
    let mut app = App::new();
    app.add_plugins(H5PomPlugin::new(&path, registry()).background(background));
    let w = app.world_mut();
    let a = w.spawn((Persist, Name::new("a"))).id();
    let b = w.spawn((Persist, Name::new("b"), ChildOf(a))).id();
    let kit = |i: i32, a: Entity, b: Entity| Kit {
        small: -3 * i as i8,
        big: u64::MAX - i as u64,
        ratio: 0.25 * i as f32,
        on: i % 2 == 0,
        label: format!("kit {i} ✓"),
        maybe: Some(f64::from(i) / 3.0),
        never: None,
        list: vec![i, -i, 7],
        dict: [("k".to_string(), 1.5 * f64::from(i))].into(),
        dir: [1.0, 0.0, -(i as f32)],
        cells: [i64::MIN, i64::from(i)],
        spin: glam::Quat::from_xyzw(0.0, 0.6, 0.0, 0.8),
        at: glam::Vec3::new(1.0, 2.0, i as f32),
        pose: Pose {
            x: 0.5,
            y: f64::from(i),
        },
        mode: if i % 2 == 0 {
            Mode::Idle
        } else {
            Mode::Running
        },
        order: if i % 2 == 0 {
            Order::Wait
        } else {
            Order::Go { to: [3.0, 4.0] }
        },
        target: (i % 2 == 1).then_some(b),
        leader: a,
        friends: vec![a, b, a],
        pair: [b, a],
        named: [("boss".to_string(), a)].into(),
        hashed: [("me".to_string(), b), ("it".to_string(), a)].into(),
        samples: (0..100).map(|k| f64::from(k * i)).collect(),
        grid: ndarray::Array2::from_shape_fn((4, 3), |(r, c)| (r * 3 + c) as f32 + i as f32),
    };
    for i in 0..4 {
        let k = kit(i, a, b);
        let row = Row {
            n: i as u16,
            x: (i != 2).then_some(i as f32 * 1.5),
            dir: [i as f32, 0.0, 1.0],
            at: glam::Vec3::splat(i as f32),
            pose: Pose { x: 1.0, y: 2.0 },
            mode: Mode::Running,
            target: (i == 1).then_some(a),
        };
        let t = Transform::from_xyz(i as f32, 2.0, 3.0)
            .with_rotation(glam::Quat::from_rotation_z(0.3 * i as f32))
            .with_scale(glam::Vec3::splat(1.5));
        w.spawn((Persist, k, row, t, Name::new(format!("unit {i}"))));
    }
    for _ in 0..3 {
        app.update();
    }
    // Change a few things, then one more tick.
    let mut q = app.world_mut().query::<(&mut Kit, &mut Transform)>();
    for (mut k, mut t) in q.iter_mut(app.world_mut()) {
        k.list.push(99);
        k.order = Order::Go { to: [9.0, 9.5] };
        t.translation.y += 1.0;
    }
    app.update();
    assert_eq!(app.world().resource::<H5Sync>().failed_flushes(), 0);
    assert!(app.world().resource::<H5Sync>().skipped().is_empty());

    // Everything, keyed by persistent id, with references as persistent ids.
    type State = Vec<(
        u64,
        Option<String>,
        Option<Kit>,
        Option<Row>,
        Option<[f32; 10]>,
        Option<u64>,
    )>;
    fn state(w: &mut World) -> State {
        let ids: std::collections::HashMap<Entity, u64> = w
            .query::<(Entity, &PersistentId)>()
            .iter(w)
            .map(|(e, p)| (e, p.0))
            .collect();
        // Entities of another world compare through their ids: map them to a fake entity
        // whose index is the id.
        let m = |e: Entity| Entity::from_raw_u32(ids[&e] as u32).unwrap();
        let mut v: State = w
            .query::<(
                &PersistentId,
                Option<&Name>,
                Option<&Kit>,
                Option<&Row>,
                Option<&Transform>,
                Option<&ChildOf>,
            )>()
            .iter(w)
            .map(|(p, n, k, r, t, c)| {
                let k = k.map(|k| Kit {
                    target: k.target.map(m),
                    leader: m(k.leader),
                    friends: k.friends.iter().map(|&e| m(e)).collect(),
                    pair: k.pair.map(m),
                    named: k.named.iter().map(|(s, &e)| (s.clone(), m(e))).collect(),
                    hashed: k.hashed.iter().map(|(s, &e)| (s.clone(), m(e))).collect(),
                    ..k.clone()
                });
                let r = r.map(|r| Row {
                    target: r.target.map(m),
                    ..r.clone()
                });
                let t = t.map(|t| {
                    let mut a = [0.0; 10];
                    a[..3].copy_from_slice(&t.translation.to_array());
                    a[3..7].copy_from_slice(&t.rotation.to_array());
                    a[7..].copy_from_slice(&t.scale.to_array());
                    a
                });
                (
                    p.0,
                    n.map(|n| n.to_string()),
                    k,
                    r,
                    t,
                    c.map(|c| ids[&c.parent()]),
                )
            })
            .collect();
        v.sort_by_key(|s| s.0);
        v
    }
    let want = state(app.world_mut());
    assert_eq!(want.len(), 6);
    drop(app);

    // A plain load, and the plugin resuming the file: both give the world back exactly.
    let mut w = World::new();
    registry().load(&mut w, &path).unwrap();
    assert_eq!(state(&mut w), want);
    let mut app = App::new();
    app.add_plugins(H5PomPlugin::new(&path, registry()));
    assert!(matches!(
        &done(&mut app)[..],
        [H5PomDone::Opened { entities: 6, .. }]
    ));
    assert_eq!(state(app.world_mut()), want);
}
