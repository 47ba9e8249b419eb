//! Types deriving bevy's `Reflect` (feature `reflect`): bevy's own `Name` and `Transform`, a
//! reflected table component and resource; the layout is the derive's (a file written through
//! reflection loads through `#[derive(Object)]`), change detection is the derive's, history
//! keeps them, and unsupported fields are refused with a typed error.
#![cfg(feature = "reflect")]

use std::path::{Path, PathBuf};
use std::process::Command;

use bevy_ecs::name::Name;
use bevy_ecs::prelude::*;
use bevy_reflect::Reflect;
use bevy_transform::components::Transform;
use glam::{Quat, Vec3};
use h5pom_ecs::{EcsError, H5Sync, History, Persist, PersistentId, Registry, Storage};
use h5pom_store::{File, Schema};

#[derive(Reflect, Clone, Copy, Debug, PartialEq)]
enum Mood {
    Calm,
    Angry,
}

#[derive(Reflect, Clone, Debug, PartialEq)]
struct Shape {
    radius: f32,
    solid: bool,
}

/// Group storage: a nested struct, a number array, a unit enum.
#[derive(Component, Reflect, Clone, Debug, PartialEq)]
struct Body {
    mass: f64,
    inertia: [f64; 3],
    shape: Shape,
    mood: Mood,
}

/// Table storage: scalars only (an enum is a string column).
#[derive(Component, Reflect, Clone, Debug, PartialEq)]
struct Stats {
    hp: i32,
    speed: f32,
    label: String,
    boss: Option<u16>,
    mood: Mood,
}

#[derive(Resource, Reflect, Clone, Debug, PartialEq)]
struct Weather {
    wind: Vec3,
    rain: Option<f64>,
    season: Mood,
}

/// A field kind reflection cannot store.
#[derive(Component, Reflect, Clone, Debug)]
struct Bag {
    count: u32,
    items: Vec<u32>,
}

fn registry() -> Registry {
    Registry::new()
        .reflect::<Name>()
        .reflect::<Transform>()
        .reflect::<Body>()
        .reflect_table::<Stats>()
        .reflect_resource::<Weather>()
}

fn tick(world: &mut World, schedule: &mut Schedule) {
    schedule.run(world);
    world.clear_trackers();
}

fn setup(path: &Path, registry: &Registry) -> (World, Schedule) {
    let mut world = World::new();
    world.insert_resource(H5Sync::create(path, registry).unwrap());
    let mut schedule = Schedule::default();
    h5pom_ecs::add_flush_system(&mut schedule);
    (world, schedule)
}

/// Floats that are not round in binary, negative zero and a subnormal: only bit-exact storage
/// gives them back.
fn transform(i: usize) -> Transform {
    let f = i as f32;
    Transform {
        translation: Vec3::new(0.1 + f, -0.0, 1e-40 * (f + 1.0)),
        rotation: Quat::from_rotation_z(0.3 * f + 0.7),
        scale: Vec3::new(1.0 / 3.0, 2.5e7, f),
    }
}

fn body(i: usize) -> Body {
    Body {
        mass: 1.0 / (i as f64 + 7.0),
        inertia: [0.1, f64::MIN_POSITIVE, -(i as f64)],
        shape: Shape {
            radius: 0.2 * i as f32,
            solid: i.is_multiple_of(2),
        },
        mood: if i.is_multiple_of(3) {
            Mood::Angry
        } else {
            Mood::Calm
        },
    }
}

fn stats(i: usize) -> Stats {
    Stats {
        hp: 100 - i as i32,
        speed: 0.1 * i as f32,
        label: format!("unit {i} — ü"),
        boss: (i == 2).then_some(7),
        mood: if i == 1 { Mood::Angry } else { Mood::Calm },
    }
}

fn weather() -> Weather {
    Weather {
        wind: Vec3::new(0.1, -3.7, 1.0 / 7.0),
        rain: None,
        season: Mood::Angry,
    }
}

fn bits(t: &Transform) -> Vec<u32> {
    let (a, b, c) = (t.translation, t.rotation, t.scale);
    a.to_array()
        .into_iter()
        .chain(b.to_array())
        .chain(c.to_array())
        .map(f32::to_bits)
        .collect()
}

/// Everything persisted, by persistent id, floats as bits.
type Snapshot = Vec<(u64, String, Vec<u32>, Option<Body>, Option<Stats>)>;

fn snapshot(world: &mut World) -> Snapshot {
    let mut v: Snapshot = world
        .query::<(
            &PersistentId,
            &Name,
            &Transform,
            Option<&Body>,
            Option<&Stats>,
        )>()
        .iter(world)
        .map(|(id, n, t, b, s)| (id.0, n.as_str().to_owned(), bits(t), b.cloned(), s.cloned()))
        .collect();
    v.sort_by_key(|e| e.0);
    v
}

fn populate(world: &mut World, n: usize) -> Vec<Entity> {
    world.insert_resource(weather());
    (0..n)
        .map(|i| {
            let mut e = world.spawn((Persist, Name::new(format!("e{i}")), transform(i)));
            if i % 2 == 0 {
                e.insert(body(i));
            }
            if i < 3 {
                e.insert(stats(i));
            }
            e.id()
        })
        .collect()
}

#[test]
fn reflected_world_reloads_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path, &registry());
    populate(&mut world, 5);
    tick(&mut world, &mut schedule);
    let st = world.resource::<H5Sync>().last_flush();
    // 5 Name + 5 Transform + 3 Body + 3 Stats rows.
    assert_eq!(st.components, 16, "{st:?}");
    assert_eq!(st.tables, 1);
    assert_eq!(st.resources, 1);
    let before = snapshot(&mut world);
    assert_eq!(before.len(), 5);
    world.remove_resource::<H5Sync>();

    let mut again = World::new();
    let report = registry().load(&mut again, &path).unwrap();
    assert_eq!(report.entities, 5);
    assert_eq!(snapshot(&mut again), before);
    let w = again.resource::<Weather>();
    assert_eq!(w.season, Mood::Angry);
    assert_eq!(w.rain, None);
    assert_eq!(
        w.wind.to_array().map(f32::to_bits),
        weather().wind.to_array().map(f32::to_bits)
    );
}

/// The layout is the derive's: the attributes hold what `#[derive(Object)]` would write.
#[test]
fn layout_is_the_derives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path, &registry());
    let e = populate(&mut world, 1)[0];
    tick(&mut world, &mut schedule);
    let id = world.get::<PersistentId>(e).unwrap().0;
    world.remove_resource::<H5Sync>();

    let f = File::open_read_only(&path, Schema::new()).unwrap();
    let ecs = f.root().folder("ecs").unwrap();
    let ent = ecs
        .folder("entities")
        .unwrap()
        .folder(&format!("{:x}", id / 1024))
        .unwrap()
        .folder(&id.to_string())
        .unwrap();
    assert_eq!(
        ent.attr::<String>("Name.name").unwrap().as_deref(),
        Some("e0")
    );
    assert_eq!(ent.attr::<f64>("Body.mass").unwrap(), Some(1.0 / 7.0));
    assert_eq!(ent.attr::<f32>("Body.shape.radius").unwrap(), Some(0.0));
    assert_eq!(ent.attr::<bool>("Body.shape.solid").unwrap(), Some(true));
    assert_eq!(
        ent.attr::<String>("Body.mood").unwrap().as_deref(),
        Some("Angry")
    );
    let names = ent.attr_names().unwrap();
    for presence in ["Name", "Transform", "Body"] {
        assert!(names.iter().any(|n| n == presence), "{names:?}");
    }
    // Arrays are one attribute each (their shape is checked with h5py below).
    for a in [
        "Transform.translation",
        "Transform.rotation",
        "Transform.scale",
        "Body.inertia",
    ] {
        assert!(names.iter().any(|n| n == a), "{a} missing from {names:?}");
    }
    let res = ecs.folder("resources").unwrap().folder("Weather").unwrap();
    assert_eq!(
        res.attr::<String>(h5pom_store::TAG_ATTR)
            .unwrap()
            .as_deref(),
        Some("Weather")
    );
    assert_eq!(
        res.attr::<String>("season").unwrap().as_deref(),
        Some("Angry")
    );
    assert_eq!(res.attr::<Option<f64>>("rain").unwrap(), Some(None));
}

/// The same struct, once reflected and once derived: a file written through one loads through
/// the other, in group and in table storage.
mod same_struct {
    use super::*;

    pub(super) mod reflected {
        use super::*;
        #[derive(Component, Reflect, Clone, Debug, PartialEq)]
        pub(crate) struct Score {
            pub(crate) points: i64,
            pub(crate) ratio: f32,
            pub(crate) note: Option<String>,
            pub(crate) alive: bool,
        }
        #[derive(Component, Reflect, Clone, Debug, PartialEq)]
        pub(crate) struct Row {
            pub(crate) x: f64,
            pub(crate) n: u8,
        }
    }

    pub(super) mod derived {
        use super::*;
        #[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
        #[h5pom(crate = "h5pom_store")]
        pub(crate) struct Score {
            pub(crate) points: i64,
            pub(crate) ratio: f32,
            pub(crate) note: Option<String>,
            pub(crate) alive: bool,
        }
        #[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
        #[h5pom(crate = "h5pom_store")]
        pub(crate) struct Row {
            pub(crate) x: f64,
            pub(crate) n: u8,
        }
    }
}

#[test]
fn reflected_file_loads_through_the_derive() {
    use same_struct::{derived as d, reflected as r};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let reflected = Registry::new()
        .reflect::<r::Score>()
        .reflect_table::<r::Row>();
    let (mut world, mut schedule) = setup(&path, &reflected);
    for i in 0..4u8 {
        world.spawn((
            Persist,
            r::Score {
                points: -(i64::from(i)) << 40,
                ratio: 0.1 * f32::from(i),
                note: (i % 2 == 1).then(|| format!("n{i}")),
                alive: i != 3,
            },
            r::Row {
                x: f64::from(i) / 3.0,
                n: i,
            },
        ));
    }
    tick(&mut world, &mut schedule);
    world.remove_resource::<H5Sync>();

    let derived = Registry::new().component::<d::Score>().table::<d::Row>();
    let mut again = World::new();
    derived.load(&mut again, &path).unwrap();
    let mut got: Vec<(d::Score, d::Row)> = again
        .query::<(&d::Score, &d::Row)>()
        .iter(&again)
        .map(|(s, r)| (s.clone(), r.clone()))
        .collect();
    got.sort_by_key(|(_, r)| r.n);
    let want: Vec<(d::Score, d::Row)> = (0..4u8)
        .map(|i| {
            (
                d::Score {
                    points: -(i64::from(i)) << 40,
                    ratio: 0.1 * f32::from(i),
                    note: (i % 2 == 1).then(|| format!("n{i}")),
                    alive: i != 3,
                },
                d::Row {
                    x: f64::from(i) / 3.0,
                    n: i,
                },
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn changing_one_transform_rewrites_one_entity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path, &registry());
    let es = populate(&mut world, 6);
    tick(&mut world, &mut schedule);
    tick(&mut world, &mut schedule); // the second slot catches up
    tick(&mut world, &mut schedule);
    assert!(!world.resource::<H5Sync>().last_flush().wrote);

    // Each change is written twice: to the slot of its tick, then (catching up) to the other
    // slot of the crash-safe pair; then nothing is.
    let changed_twice = |world: &mut World, schedule: &mut Schedule| {
        let mut out = Vec::new();
        for _ in 0..3 {
            tick(world, schedule);
            let st = world.resource::<H5Sync>().last_flush();
            out.push((st.components, st.removed, st.tables, st.resources));
        }
        out
    };
    world.get_mut::<Transform>(es[4]).unwrap().translation.x = 42.5;
    assert_eq!(
        changed_twice(&mut world, &mut schedule),
        [(1, 0, 0, 0), (1, 0, 0, 0), (0, 0, 0, 0)]
    );

    // A table row: one component, one table written; the resource.
    world.get_mut::<Stats>(es[1]).unwrap().hp = -5;
    world.resource_mut::<Weather>().rain = Some(2.5);
    assert_eq!(
        changed_twice(&mut world, &mut schedule),
        [(1, 0, 1, 1), (1, 0, 1, 1), (0, 0, 0, 0)]
    );

    // Removal is seen too.
    world.entity_mut(es[0]).remove::<Body>();
    assert_eq!(
        changed_twice(&mut world, &mut schedule),
        [(0, 1, 0, 0), (0, 1, 0, 0), (0, 0, 0, 0)]
    );

    let before = snapshot(&mut world);
    world.remove_resource::<H5Sync>();
    let mut again = World::new();
    registry().load(&mut again, &path).unwrap();
    assert_eq!(snapshot(&mut again), before);
    assert_eq!(again.resource::<Weather>().rain, Some(2.5));
}

#[test]
fn unsupported_fields_are_refused_at_registration() {
    let dir = tempfile::tempdir().unwrap();
    let err = H5Sync::create(dir.path().join("a.h5"), &Registry::new().reflect::<Bag>())
        .err()
        .expect("a Vec field must be refused");
    match err {
        EcsError::UnsupportedField {
            ty, field, storage, ..
        } => {
            assert_eq!(
                (ty, field.as_str(), storage),
                ("Bag", "items", Storage::Group)
            );
        }
        other => panic!("wrong error: {other}"),
    }
    // A bool array is no table column.
    #[derive(Component, Reflect)]
    struct Flags {
        on: [bool; 2],
    }
    let err = Registry::new()
        .reflect_table::<Flags>()
        .load(&mut World::new(), dir.path().join("none.h5"))
        .expect_err("a bool array is not a column");
    assert!(
        matches!(
            &err,
            EcsError::UnsupportedField { ty: "Flags", field, storage: Storage::Table, .. }
                if field == "on"
        ),
        "{err}"
    );
    // Nested fields are named with dots.
    #[derive(Component, Reflect)]
    struct Outer {
        inner: Inner,
    }
    #[derive(Reflect)]
    struct Inner {
        ok: f32,
        bad: (u8, u8),
    }
    let err = H5Sync::create(dir.path().join("b.h5"), &Registry::new().reflect::<Outer>())
        .err()
        .expect("a tuple field must be refused");
    assert!(
        matches!(&err, EcsError::UnsupportedField { field, .. } if field == "inner.bad"),
        "{err}"
    );
}

#[test]
fn history_keeps_reflected_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path, &registry());
    world
        .resource_mut::<H5Sync>()
        .keep_history(&registry(), History::new())
        .unwrap();
    let es = populate(&mut world, 3);
    // `rain` starts as None: its series is created by its first value.
    world.resource_mut::<Weather>().rain = None;
    tick(&mut world, &mut schedule);
    let first = snapshot(&mut world);
    world.get_mut::<Transform>(es[1]).unwrap().translation.y = -7.25;
    world.get_mut::<Stats>(es[0]).unwrap().mood = Mood::Angry;
    world.resource_mut::<Weather>().season = Mood::Calm;
    world.resource_mut::<Weather>().rain = Some(1.5);
    tick(&mut world, &mut schedule);
    let second = snapshot(&mut world);
    assert_ne!(first, second);
    world.resource_mut::<Weather>().rain = None;
    tick(&mut world, &mut schedule);
    world.remove_resource::<H5Sync>();

    let reader = h5pom_ecs::history::HistoryReader::open(&path).unwrap();
    let steps = reader.steps("Transform").unwrap();
    assert_eq!(steps.len(), 2, "{steps:?}");
    let weather = reader.steps("Weather").unwrap();
    assert_eq!(weather.len(), 3, "{weather:?}");
    for (step, want, season, rain) in [
        (steps[0], Some(&first), Mood::Angry, None),
        (steps[1], Some(&second), Mood::Calm, Some(1.5)),
        (weather[2], None, Mood::Calm, None),
    ] {
        let mut w = World::new();
        registry().load_at(&mut w, &path, step).unwrap();
        if let Some(want) = want {
            assert_eq!(&snapshot(&mut w), want, "step {step}");
        }
        assert_eq!(w.resource::<Weather>().season, season);
        assert_eq!(w.resource::<Weather>().rain, rain, "step {step}");
    }
}

fn python() -> PathBuf {
    let p = PathBuf::from(
        std::env::var_os("H5POM_PYTHON")
            .filter(|p| !p.is_empty())
            .expect("H5POM_PYTHON is not set: run `make setup-test`"),
    );
    if p.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
    } else {
        p
    }
}

/// h5py sees glam vectors as float32 arrays of shape (3,) / (4,), `[f64; 3]` as float64.
#[test]
fn h5py_sees_float32_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let (mut world, mut schedule) = setup(&path, &registry());
    let e = populate(&mut world, 1)[0];
    tick(&mut world, &mut schedule);
    let id = world.get::<PersistentId>(e).unwrap().0;
    world.remove_resource::<H5Sync>();
    let t = transform(0);
    let script = format!(
        r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    g = f["ecs/entities/{bucket:x}/{id}"]
    for name, shape, want in [("Transform.translation", (3,), {tr:?}),
                              ("Transform.rotation", (4,), {rot:?}),
                              ("Transform.scale", (3,), {sc:?})]:
        a = g.attrs[name]
        assert a.dtype == np.float32 and a.shape == shape, (name, a.dtype, a.shape)
        assert [float(x) for x in a] == want, (name, a, want)
    b = g.attrs["Body.inertia"]
    assert b.dtype == np.float64 and b.shape == (3,), b
    assert g.attrs["Name.name"] == "e0"
    assert g.attrs["Body.mood"] == "Angry"
print("ok")
"#,
        bucket = id / 1024,
        tr = t.translation.to_array().map(f64::from),
        rot = t.rotation.to_array().map(f64::from),
        sc = t.scale.to_array().map(f64::from),
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&path)
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// Glam vectors are `[row, N]` columns: bevy's `Transform` as a table, bit for bit.
#[test]
fn transform_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.h5");
    let registry = Registry::new().reflect_table::<Transform>();
    let mut world = World::new();
    let ts: Vec<Transform> = (0..5).map(transform).collect();
    for t in &ts {
        world.spawn((Persist, *t));
    }
    world.insert_resource(H5Sync::create(&path, &registry).unwrap());
    world.resource_scope(|w, mut s: Mut<H5Sync>| s.flush_now(w).unwrap());
    world.remove_resource::<H5Sync>();
    let f = h5pom_store::File::open_read_only(&path, h5pom_store::Schema::new()).unwrap();
    let ds = f.hdf5().dataset("ecs/tables/Transform/rotation").unwrap();
    assert_eq!(ds.shape(), [5, 4]);
    drop(ds);
    drop(f);
    let mut again = World::new();
    registry.load(&mut again, &path).unwrap();
    let mut got: Vec<Vec<u32>> = again.query::<&Transform>().iter(&again).map(bits).collect();
    let mut want: Vec<Vec<u32>> = ts.iter().map(bits).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}
