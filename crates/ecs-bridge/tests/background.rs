//! Background flushes (`H5Sync::set_background`): the arrays of a tick are copied out of the
//! world and written by a writer thread while the next tick runs; the tick commits when the
//! writer is done. What is committed is exactly the tick that was flushed, whatever the world
//! does meanwhile.

use bevy_ecs::prelude::*;
use h5pom_ecs::{Durability, H5Sync, Persist, PersistentId, Registry};
use ndarray::Array2;

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Cloud {
    #[h5pom(compression = "deflate:1")]
    pos: Array2<f32>,
    vel: Array2<f64>,
    step: u64,
}

#[derive(Component, h5pom_derive::Object, Clone, Copy, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Probe {
    value: f64,
}

#[derive(Resource, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Clock {
    step: u64,
}

fn registry() -> Registry {
    Registry::new()
        .component::<Cloud>()
        .table::<Probe>()
        .resource::<Clock>()
}

fn cloud(i: usize, step: u64) -> Cloud {
    let s = step as f32;
    Cloud {
        pos: Array2::from_shape_fn((20_000, 3), |(r, c)| (r * 3 + c + i) as f32 * 0.5 + s),
        vel: Array2::from_shape_fn((5_000, 3), |(r, c)| (r + c) as f64 - f64::from(s)),
        step,
    }
}

/// Every persisted entity's (id, Cloud, Probe), and the clock.
type State = (Vec<(u64, Option<Cloud>, Option<Probe>)>, Option<u64>);

fn state(w: &mut World) -> State {
    let mut v: Vec<_> = w
        .query::<(&PersistentId, Option<&Cloud>, Option<&Probe>)>()
        .iter(w)
        .map(|(p, c, q)| (p.0, c.cloned(), q.copied()))
        .collect();
    v.sort_by_key(|r| r.0);
    (v, w.get_resource::<Clock>().map(|c| c.step))
}

fn advance(w: &mut World, step: u64) {
    w.resource_mut::<Clock>().step = step;
    let mut q = w.query::<(&mut Cloud, &mut Probe)>();
    for (i, (mut c, mut p)) in q.iter_mut(w).enumerate() {
        *c = cloud(i, step);
        p.value = step as f64 * 10.0 + i as f64;
    }
}

fn flush(w: &mut World) {
    w.resource_scope(|w, mut s: Mut<H5Sync>| s.tick(w)).unwrap();
    w.clear_trackers();
}

#[test]
fn a_background_flush_commits_exactly_its_tick_while_the_world_moves_on() {
    for durability in [Durability::Process, Durability::Unprotected] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bg.h5");
        let mut w = World::new();
        w.insert_resource(Clock { step: 0 });
        for i in 0..3 {
            w.spawn((Persist, cloud(i, 0), Probe { value: i as f64 }));
        }
        let mut sync = H5Sync::create_with(&path, &registry(), durability).unwrap();
        sync.set_background(true).unwrap();
        w.insert_resource(sync);
        let mut states = vec![];
        for step in 0..6u64 {
            if step > 0 {
                advance(&mut w, step);
            }
            flush(&mut w);
            states.push(state(&mut w));
            let sync = w.resource::<H5Sync>();
            // The flush of this tick is in flight: the one before is committed.
            assert_eq!(sync.flushes(), step, "{durability:?}");
            // The world changes while the writer writes (as the next tick would).
            advance(&mut w, 1000 + step);
            let done = w.resource_mut::<H5Sync>().wait().unwrap().unwrap();
            assert_eq!(w.resource::<H5Sync>().flushes(), step + 1);
            assert!(done.array_bytes > 0 && done.arrays_stored > 0);
            assert!(done.committed_after >= done.duration);
            // The committed file holds the flushed tick, not what the world became.
            let mut back = World::new();
            let r = registry().load(&mut back, &path).unwrap();
            assert_eq!(r.tick, step + 1);
            assert_eq!(
                state(&mut back),
                states[step as usize],
                "{durability:?} step {step}"
            );
            // Put the world back as it was flushed (the test's next step starts from it).
            advance(&mut w, step);
            w.clear_trackers();
        }
        // Without an explicit wait, the next flush (or dropping the sync) commits.
        advance(&mut w, 77);
        flush(&mut w);
        let want = state(&mut w);
        advance(&mut w, 78);
        drop(w.remove_resource::<H5Sync>());
        let mut back = World::new();
        let r = registry().load(&mut back, &path).unwrap();
        assert_eq!(r.tick, 7);
        assert_eq!(state(&mut back), want);
    }
}

#[test]
fn background_and_inline_flushes_write_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |background: bool| {
        let path = dir.path().join(format!("bg-{background}.h5"));
        let mut w = World::new();
        w.insert_resource(Clock { step: 0 });
        for i in 0..4 {
            w.spawn((Persist, cloud(i, 0), Probe { value: i as f64 }));
        }
        let mut sync = H5Sync::create(&path, &registry()).unwrap();
        sync.set_background(background).unwrap();
        w.insert_resource(sync);
        for step in 1..=8 {
            advance(&mut w, step);
            if step == 4 {
                // Spawn and despawn between flushes.
                w.spawn((Persist, cloud(9, step), Probe { value: -1.0 }));
                let first = w.query::<(Entity, &Probe)>().iter(&w).next().unwrap().0;
                w.despawn(first);
            }
            flush(&mut w);
        }
        w.resource_mut::<H5Sync>().wait().unwrap();
        assert_eq!(w.resource::<H5Sync>().flushes(), 8);
        drop(w.remove_resource::<H5Sync>());
        let mut back = World::new();
        registry().load(&mut back, &path).unwrap();
        state(&mut back)
    };
    let inline = run(false);
    assert_eq!(inline.0.len(), 4);
    assert_eq!(run(true), inline);
}
