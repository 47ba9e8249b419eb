//! A run's history read by the tools of the field: xarray (h5netcdf engine) opens every
//! `/ecs/history/<Tag>` group of the history file `<run>.history` with named dimensions
//! (`step`, `entity`) and the values h5py reads through the run file's link.

mod common;

use bevy_ecs::prelude::*;
use h5pom::ecs::{H5Sync, History, Persist, Registry};

use common::{run_py, temp_dir};

#[derive(Component, h5pom::Object, Clone, Debug, PartialEq)]
struct Pos {
    x: f64,
    y: f32,
    time: Option<i32>,
}

#[derive(Component, h5pom::Object, Clone, Debug, PartialEq)]
struct Label {
    name: String,
    on: bool,
}

#[derive(Resource, h5pom::Object, Clone, Debug, PartialEq)]
struct Clock {
    step: i64,
    time: f64,
}

#[test]
fn xarray_opens_every_history_group() {
    let dir = temp_dir();
    let path = dir.path().join("run.h5");
    let registry = Registry::new()
        .table::<Pos>()
        .component::<Label>()
        .resource::<Clock>();
    let mut world = World::new();
    world.insert_resource(Clock { step: 0, time: 0.0 });
    let mut es = Vec::new();
    for i in 0..5 {
        es.push(
            world
                .spawn((
                    Persist,
                    Pos {
                        x: i as f64,
                        y: 0.5,
                        time: None,
                    },
                    Label {
                        name: format!("e{i}"),
                        on: i % 2 == 0,
                    },
                ))
                .id(),
        );
    }
    let mut sync = H5Sync::create(&path, &registry).expect("create");
    sync.keep_history(
        &registry,
        History::new().step_time(|w| {
            let c = w.resource::<Clock>();
            (c.step, c.time)
        }),
    )
    .expect("history");
    world.insert_resource(sync);
    for step in 0..6i64 {
        {
            let mut c = world.resource_mut::<Clock>();
            c.step = step * 100;
            c.time = step as f64 * 0.5;
        }
        if step > 0 {
            let e = es[1 + step as usize % 4];
            world.get_mut::<Pos>(e).expect("pos").x += 1.0;
            world.get_mut::<Pos>(e).expect("pos").time = Some(step as i32);
        }
        if step == 3 {
            world.spawn((
                Persist,
                Pos {
                    x: -1.0,
                    y: 1.0,
                    time: Some(3),
                },
            ));
            world.entity_mut(es[0]).despawn();
        }
        world
            .resource_scope(|w, mut s: Mut<H5Sync>| s.tick(w))
            .expect("tick");
        world.clear_trackers();
    }
    world.remove_resource::<H5Sync>();
    let history = dir.path().join("run.h5.history");
    let out = run_py("check_history_xarray.py", [&path, &history]);
    let seen = out.stdout;
    for tag in ["Pos", "Label", "Clock", "index"] {
        assert!(
            seen.contains(&format!("\"{tag}\"")),
            "{tag} missing: {seen}"
        );
    }
    assert!(
        seen.contains("\"entity\": 6"),
        "6 entities ever had Pos: {seen}"
    );
    assert!(
        seen.contains("\"time-field\""),
        "the field named time: {seen}"
    );
}
