//! The slot-pair commit protocol stopped at each of its steps, as a killed writer stops: the
//! flush in flight is lost, its slot is left damaged, and recovery must give back the last
//! committed tick, exactly, and resume from it. No sim binary, no child process: the seam is
//! [`Step`], checked by `H5Sync::flush_target` and `slots::commit`.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;

use crate::slots::{Step, committed_slot, slot_paths};
use crate::{Durability, H5Sync, Persist, PersistentId, Registry, recover};

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Body {
    name: String,
    mass: f64,
    shape: ndarray::Array1<f32>,
}

#[derive(Component, h5pom_derive::Object, Clone, Copy, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Vel {
    v: f64,
    spin: Option<i32>,
}

#[derive(Resource, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Clock {
    step: u64,
}

fn registry() -> Registry {
    Registry::new()
        .component::<Body>()
        .table::<Vel>()
        .resource::<Clock>()
        .hierarchy()
}

/// What a world holds, by persistent id, in a comparable form.
type Snapshot = Vec<(u64, Option<Body>, Option<Vel>, Option<u64>)>;

fn snapshot(world: &mut World) -> (Snapshot, Option<u64>) {
    let pid_of = |w: &World, e: Entity| w.get::<PersistentId>(e).map(|p| p.0);
    let mut q = world.query_filtered::<Entity, With<Persist>>();
    let entities: Vec<Entity> = q.iter(world).collect();
    let mut out: Snapshot = entities
        .into_iter()
        .map(|e| {
            let parent = world
                .get::<ChildOf>(e)
                .and_then(|c| pid_of(world, c.parent()));
            (
                pid_of(world, e).unwrap_or(0),
                world.get::<Body>(e).cloned(),
                world.get::<Vel>(e).copied(),
                parent,
            )
        })
        .collect();
    out.sort_by_key(|r| r.0);
    (out, world.get_resource::<Clock>().map(|c| c.step))
}

fn body(i: usize) -> Body {
    Body {
        name: format!("b{i}"),
        mass: i as f64 * 0.5,
        shape: ndarray::Array1::from_elem(3 + i % 4, i as f32),
    }
}

/// One tick of world changes: a different mix each step `k`.
fn mutate(world: &mut World, k: u64) {
    world.resource_mut::<Clock>().step = k;
    let mut q = world.query_filtered::<Entity, With<Persist>>();
    let mut es: Vec<Entity> = q.iter(world).collect();
    es.sort();
    for (i, &e) in es.iter().enumerate() {
        if i as u64 % 3 == k % 3 {
            if let Some(mut v) = world.get_mut::<Vel>(e) {
                v.v += k as f64;
                v.spin = if k.is_multiple_of(2) {
                    None
                } else {
                    Some(k as i32)
                };
            }
            if let Some(mut b) = world.get_mut::<Body>(e) {
                b.mass += 1.0;
                b.shape.fill(k as f32);
            }
        }
    }
    if let Some(&victim) = es.get(k as usize % es.len().max(1)) {
        world.entity_mut(victim).despawn();
    }
    let parent = es.first().copied().filter(|&e| world.get_entity(e).is_ok());
    let new = world
        .spawn((
            Persist,
            body(k as usize + 100),
            Vel {
                v: -1.0,
                spin: None,
            },
        ))
        .id();
    if let Some(p) = parent {
        world.entity_mut(new).insert(ChildOf(p));
    }
}

fn populated(durability: Durability, path: &Path) -> World {
    let mut world = World::new();
    world.insert_resource(Clock { step: 0 });
    for i in 0..12 {
        let mut e = world.spawn((Persist, body(i)));
        if i % 2 == 0 {
            e.insert(Vel {
                v: i as f64,
                spin: Some(i as i32),
            });
        }
    }
    let sync = H5Sync::create_with(path, &registry(), durability).unwrap();
    world.insert_resource(sync);
    world
}

fn flush(world: &mut World) -> crate::Result<()> {
    let r = world.resource_scope(|world, mut sync: Mut<H5Sync>| sync.tick(world));
    world.clear_trackers();
    r
}

/// Overwrites part of a slot and cuts it short, as a writer killed in the middle of a flush
/// may leave it.
fn damage(slot: &Path) {
    let len = std::fs::metadata(slot).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(slot).unwrap();
    f.seek(SeekFrom::Start(len / 3)).unwrap();
    f.write_all(&vec![0xA5; 4096]).unwrap();
    f.set_len(len / 2).unwrap();
}

fn loaded(path: &Path) -> (Snapshot, Option<u64>, u64) {
    let mut world = World::new();
    let report = registry().load(&mut world, path).unwrap();
    let (s, clock) = snapshot(&mut world);
    (s, clock, report.tick)
}

#[test]
fn a_flush_stopped_at_any_step_recovers_the_last_committed_tick() {
    for durability in [Durability::Process, Durability::Power] {
        for step in Step::ALL {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.h5");
            let mut world = populated(durability, &path);
            for k in 1..=3 {
                mutate(&mut world, k);
                flush(&mut world).unwrap();
            }
            let committed = snapshot(&mut world);
            mutate(&mut world, 4);
            world.resource_mut::<H5Sync>().crash_at = Some(step);
            let err = flush(&mut world).unwrap_err();
            assert!(
                err.to_string().contains("injected crash"),
                "{step:?}: {err}"
            );
            // (New entities got their ids in the failed flush.)
            let next = snapshot(&mut world);
            // The process "dies": its files close, the slot in flight is damaged.
            world.remove_resource::<H5Sync>();
            let slot = committed_slot(&path).unwrap();
            damage(&slot_paths(&path)[1 - slot]);

            // Once the link is renamed, the tick in flight is committed.
            let (want, want_tick) = if step == Step::Renamed {
                (next, 4)
            } else {
                (committed, 3)
            };
            let r = recover(&path).unwrap();
            assert_eq!(r.tick, want_tick, "{durability:?} {step:?}");
            assert!(r.slot_pair && r.rebuilt);
            let (s, clock, tick) = loaded(&path);
            assert_eq!(
                (s, clock),
                want,
                "{durability:?} {step:?}: world after recovery"
            );
            assert_eq!(tick, want_tick);

            // Resume and go on: the next flushes land, in both slots in turn.
            let mut again = World::new();
            let (sync, report) =
                H5Sync::resume_with(&mut again, &path, &registry(), durability).unwrap();
            assert_eq!(report.tick, want_tick);
            again.insert_resource(sync);
            for k in 5..=6 {
                mutate(&mut again, k);
                flush(&mut again).unwrap();
            }
            let expect = snapshot(&mut again);
            again.remove_resource::<H5Sync>();
            let (s, clock, tick) = loaded(&path);
            assert_eq!(
                (s, clock),
                expect,
                "{durability:?} {step:?}: after resuming"
            );
            assert_eq!(tick, want_tick + 2);
        }
    }
}

#[test]
fn a_failed_flush_is_retried_by_rebuilding_the_slot_and_persistence_resumes() {
    for durability in [Durability::Process, Durability::Unprotected] {
        for step in [Step::Written, Step::Counted, Step::Flushed, Step::Linked] {
            if durability == Durability::Unprotected && step == Step::Linked {
                continue; // one file: no link
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.h5");
            let mut world = populated(durability, &path);
            flush(&mut world).unwrap();
            flush(&mut world).unwrap();
            let before = world.resource::<H5Sync>().flushes();
            world.resource_mut::<H5Sync>().crash_at = Some(step);
            mutate(&mut world, 1);
            let err = flush(&mut world).unwrap_err();
            assert!(err.to_string().contains("injected crash"), "{err}");
            {
                let sync = world.resource::<H5Sync>();
                assert_eq!(sync.failed_flushes(), 1);
                assert!(
                    sync.last_error()
                        .is_some_and(|m| m.contains("injected crash"))
                );
            }
            world.resource_mut::<H5Sync>().crash_at = None;
            // The next flushes rebuild the slot the failed one was writing and go on.
            for k in 2..=4 {
                mutate(&mut world, k);
                flush(&mut world).unwrap();
                let want = snapshot(&mut world);
                let (s, clock, _) = loaded(&path);
                assert_eq!((s, clock), want, "{durability:?} {step:?}: after flush {k}");
            }
            assert!(world.resource::<H5Sync>().last_error().is_none());
            world.remove_resource::<H5Sync>();
            let (s, _, tick) = loaded(&path);
            assert_eq!(
                tick,
                before + 3,
                "{durability:?} {step:?}: three ticks after the failure"
            );
            assert!(!s.is_empty());
        }
    }
}

#[test]
fn flush_with_on_a_pair_counts_one_tick_and_reaches_both_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let mut world = populated(Durability::Process, &path);
    flush(&mut world).unwrap();
    mutate(&mut world, 1);
    let extra = |f: &h5pom_store::File| f.root().set_attr("note", &"hello".to_owned());
    world.resource_scope(|world, mut sync: Mut<H5Sync>| {
        sync.flush_with(world, &extra).unwrap();
        assert_eq!(sync.flushes(), 2);
    });
    world.remove_resource::<H5Sync>();
    for slot in slot_paths(&path) {
        let f = h5pom_store::File::open_read_only(&slot, h5pom_store::Schema::new()).unwrap();
        assert_eq!(
            crate::layout::Layout::open(f.clone())
                .unwrap()
                .tick()
                .unwrap(),
            2
        );
        assert_eq!(
            f.root().attr::<String>("note").unwrap().as_deref(),
            Some("hello")
        );
    }
}

/// Readers holding slots (a shared `flock`, as libhdf5 takes for h5py) at every phase of the
/// alternation: the writer never waits, replaces a held slot by a copy of the committed one,
/// and every committed tick still loads as the world was; what a reader holds never changes.
#[test]
fn held_slots_are_replaced_not_waited_for_and_every_tick_stays_exact() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.h5");
    let mut world = populated(Durability::Process, &path);
    flush(&mut world).unwrap();
    let mut replaced = 0;
    // (The held file, its bytes when taken, the tick at which it is released.)
    let mut held: Vec<(std::fs::File, Vec<u8>, u64)> = Vec::new();
    for k in 1..=24u64 {
        // Hold the committed slot now and then, for one to four ticks.
        if k % 3 != 0 {
            let slot = slot_paths(&path)[committed_slot(&path).unwrap()].clone();
            let mut f = std::fs::File::open(&slot).unwrap();
            f.lock_shared().unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            held.push((f, bytes, k + k % 4));
        }
        // Resources come and go too (the copy may hold one the slot's tracking thinks gone).
        if world.get_resource::<Clock>().is_none() {
            world.insert_resource(Clock { step: k });
        }
        mutate(&mut world, k);
        if k % 5 == 2 {
            world.remove_resource::<Clock>();
        }
        let stats = world.resource_scope(|world, mut sync: Mut<H5Sync>| {
            let s = sync.flush_now(world).unwrap();
            world.clear_trackers();
            s
        });
        replaced += usize::from(stats.slot_replaced);
        let want = snapshot(&mut world);
        let (s, clock, tick) = loaded(&path);
        assert_eq!((s, clock), want, "tick {k}");
        assert_eq!(tick, k + 1);
        held.retain_mut(|(f, bytes, until)| {
            use std::io::{Seek, SeekFrom};
            let mut now = Vec::new();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.read_to_end(&mut now).unwrap();
            let first = now.iter().zip(bytes.iter()).position(|(a, b)| a != b);
            assert!(
                now == *bytes,
                "tick {k}: a held slot was written (length {} -> {}, first change at {first:?})",
                bytes.len(),
                now.len()
            );
            *until > k
        });
    }
    assert!(replaced >= 8, "only {replaced} flushes met a held slot");
    // Resume from the last tick and go on: the replaced slots are ordinary slots.
    drop(held);
    let expect = snapshot(&mut world);
    world.remove_resource::<H5Sync>();
    let mut again = World::new();
    let (sync, _) =
        H5Sync::resume_with(&mut again, &path, &registry(), Durability::Process).unwrap();
    assert_eq!(snapshot(&mut again), expect);
    again.insert_resource(sync);
    mutate(&mut again, 99);
    flush(&mut again).unwrap();
    let want = snapshot(&mut again);
    let (s, clock, _) = loaded(&path);
    assert_eq!((s, clock), want);
}
