//! Property: any world of persisted entities (references, hierarchy, arrays, Options,
//! strings, floats of any bit pattern) saved and reloaded is equal component for component,
//! bit for bit — through a snapshot, and through per-tick flushes of a live sync.

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom_ecs::{H5Sync, Persist, PersistentId, Registry};
use ndarray::Array1;
use proptest::prelude::*;

#[derive(Component, h5pom_derive::Object, Clone, Debug)]
#[h5pom(crate = "h5pom_store")]
struct Person {
    name: String,
    age: u32,
    nick: Option<String>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug)]
#[h5pom(crate = "h5pom_store")]
struct Pos {
    x: f64,
    y: f32,
    tag: Option<i16>,
    on: bool,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug)]
#[h5pom(crate = "h5pom_store")]
struct Follows {
    target: Entity,
    backup: Option<Entity>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug)]
#[h5pom(crate = "h5pom_store")]
struct Blob {
    data: Array1<f32>,
    counts: Array1<u64>,
    labels: Vec<String>,
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
        .component::<Blob>()
        .resource::<Clock>()
        .hierarchy()
}

#[derive(Clone, Debug)]
struct Spec {
    person: Option<(String, u32, Option<String>)>,
    pos: Option<(u64, u32, Option<i16>, bool)>,
    follows: Option<(usize, Option<usize>)>,
    blob: Option<(Vec<u32>, Vec<u64>, Vec<String>)>,
    parent: Option<usize>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let text = "[a-zA-Z0-9 éü✓]{0,12}";
    (
        proptest::option::of((text, any::<u32>(), proptest::option::of(text))),
        proptest::option::of((
            any::<u64>(),
            any::<u32>(),
            proptest::option::of(any::<i16>()),
            any::<bool>(),
        )),
        proptest::option::of((any::<usize>(), proptest::option::of(any::<usize>()))),
        proptest::option::of((
            proptest::collection::vec(any::<u32>(), 0..20),
            proptest::collection::vec(any::<u64>(), 0..5),
            proptest::collection::vec(text, 0..3),
        )),
        proptest::option::of(any::<usize>()),
    )
        .prop_map(|(person, pos, follows, blob, parent)| Spec {
            person,
            pos,
            follows,
            blob,
            parent,
        })
}

fn build(world: &mut World, specs: &[Spec]) {
    let es: Vec<Entity> = specs.iter().map(|_| world.spawn(Persist).id()).collect();
    for (i, s) in specs.iter().enumerate() {
        let mut e = world.entity_mut(es[i]);
        if let Some((name, age, nick)) = &s.person {
            e.insert(Person {
                name: name.clone(),
                age: *age,
                nick: nick.clone(),
            });
        }
        if let Some((x, y, tag, on)) = s.pos {
            e.insert(Pos {
                x: f64::from_bits(x),
                y: f32::from_bits(y),
                tag,
                on,
            });
        }
        if let Some((t, b)) = s.follows {
            e.insert(Follows {
                target: es[t % es.len()],
                backup: b.map(|b| es[b % es.len()]),
            });
        }
        if let Some((data, counts, labels)) = &s.blob {
            e.insert(Blob {
                data: data.iter().map(|&b| f32::from_bits(b)).collect(),
                counts: Array1::from_vec(counts.clone()),
                labels: labels.clone(),
            });
        }
        // Parents come earlier, so the hierarchy is acyclic.
        if let Some(p) = s.parent.filter(|_| i > 0) {
            e.insert(ChildOf(es[p % i]));
        }
    }
}

/// The world in terms of persistent ids, floats as bits: comparable across worlds.
fn canonical(world: &mut World) -> Vec<String> {
    let ids: std::collections::HashMap<Entity, u64> = world
        .query::<(Entity, &PersistentId)>()
        .iter(world)
        .map(|(e, p)| (e, p.0))
        .collect();
    let mut out: Vec<String> = Vec::new();
    // Resources are entities too in bevy 0.20: look at persisted entities only.
    let mut q = world.query_filtered::<(
        Entity,
        Option<&Person>,
        Option<&Pos>,
        Option<&Follows>,
        Option<&Blob>,
        Option<&ChildOf>,
    ), With<Persist>>();
    for (e, person, pos, follows, blob, child_of) in q.iter(world) {
        let pos = pos.map(|p| (p.x.to_bits(), p.y.to_bits(), p.tag, p.on));
        let follows = follows.map(|f| (ids[&f.target], f.backup.map(|b| ids[&b])));
        let blob = blob.map(|b| {
            (
                b.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                b.counts.to_vec(),
                b.labels.clone(),
            )
        });
        out.push(format!(
            "{} {:?} {:?} {:?} {:?} {:?}",
            ids[&e],
            person.map(|p| (&p.name, p.age, &p.nick)),
            pos,
            follows,
            blob,
            child_of.map(|c| ids[&c.parent()])
        ));
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_reload_is_exact(specs in proptest::collection::vec(spec(), 1..25), step in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.h5");
        let mut world = World::new();
        world.insert_resource(Clock { step, dt: 0.1 });
        build(&mut world, &specs);
        registry().snapshot(&mut world, &path).unwrap();
        let mut again = World::new();
        registry().load(&mut again, &path).unwrap();
        prop_assert_eq!(canonical(&mut world), canonical(&mut again));
        prop_assert_eq!(again.resource::<Clock>(), world.resource::<Clock>());
    }

    #[test]
    fn live_sync_reload_is_exact(specs in proptest::collection::vec(spec(), 1..15), edits in proptest::collection::vec((any::<usize>(), any::<u32>()), 0..6)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.h5");
        let mut world = World::new();
        world.insert_resource(H5Sync::create(&path, &registry()).unwrap());
        let mut schedule = Schedule::default();
        h5pom_ecs::add_flush_system(&mut schedule);
        build(&mut world, &specs);
        schedule.run(&mut world);
        world.clear_trackers();
        // Edits between ticks: change ages, drop some components, despawn some entities.
        let es: Vec<Entity> = world.query_filtered::<Entity, With<Persist>>().iter(&world).collect();
        for (k, v) in edits {
            let e = es[k % es.len()];
            if world.get_entity(e).is_err() { continue; }
            match v % 4 {
                0 => { if let Some(mut p) = world.get_mut::<Person>(e) { p.age = v; } }
                1 => { world.entity_mut(e).remove::<Pos>(); }
                2 => { world.entity_mut(e).insert(Pos { x: f64::from(v), y: -0.0, tag: None, on: true }); }
                _ => {
                    // Despawning a referenced entity would leave dangling references: only
                    // despawn entities nobody follows or parents.
                    let referenced = world.query::<&Follows>().iter(&world).any(|f| f.target == e || f.backup == Some(e))
                        || world.query::<&ChildOf>().iter(&world).any(|c| c.parent() == e);
                    if !referenced { world.despawn(e); }
                }
            }
            schedule.run(&mut world);
            world.clear_trackers();
        }
        world.remove_resource::<H5Sync>();
        let mut again = World::new();
        registry().load(&mut again, &path).unwrap();
        prop_assert_eq!(canonical(&mut world), canonical(&mut again));
    }
}
