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
