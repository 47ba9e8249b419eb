//! Sharded runs without MPI: writers are threads that agree through a shared barrier (the
//! same two agreements an MPI communicator gives), so the commit, the run file and the
//! partitioned reload are checked by `cargo test`. `tests/mpi.rs` runs the same under
//! `mpirun`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom_ecs::sharded::{Collective, Shards, shard_path};
use h5pom_ecs::{Persist, PersistentId, Registry, ShardedSync, Solo};
use h5pom_store::reexports::hdf5;

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Body {
    name: String,
    mass: f64,
}

#[derive(Component, h5pom_derive::Object, Clone, Copy, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Pos {
    x: f64,
    tag: Option<i32>,
}

#[derive(Resource, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Clock {
    step: u64,
}

fn registry() -> Registry {
    Registry::new()
        .component::<Body>()
        .table::<Pos>()
        .resource::<Clock>()
        .hierarchy()
}

/// Writers as threads: each agreement is a barrier around a shared slot per writer.
struct Threads {
    rank: usize,
    size: usize,
    shared: Arc<(Barrier, Mutex<Vec<Vec<u64>>>)>,
}

impl Threads {
    fn team(size: usize) -> Vec<Threads> {
        let shared = Arc::new((Barrier::new(size), Mutex::new(vec![Vec::new(); size])));
        (0..size)
            .map(|rank| Threads {
                rank,
                size,
                shared: shared.clone(),
            })
            .collect()
    }

    fn reduce(&self, values: &mut [u64], f: fn(u64, u64) -> u64) {
        let (barrier, slots) = &*self.shared;
        slots.lock().unwrap()[self.rank] = values.to_vec();
        barrier.wait();
        {
            let all = slots.lock().unwrap();
            for (i, v) in values.iter_mut().enumerate() {
                *v = all.iter().map(|s| s[i]).fold(*v, f);
            }
        }
        barrier.wait();
    }
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_min(&self, values: &mut [u64]) {
        self.reduce(values, u64::min);
    }
    fn all_max(&self, values: &mut [u64]) {
        self.reduce(values, u64::max);
    }
    fn all_sum(&self, values: &mut [u64]) {
        let mine = values.to_vec();
        self.reduce(values, u64::wrapping_add);
        // `reduce` folds every writer's value into this one's, which counted it twice.
        for (v, m) in values.iter_mut().zip(mine) {
            *v = v.wrapping_sub(m);
        }
    }
}

/// What a world holds: persistent id → (body, position, parent's id).
type State = BTreeMap<u64, (Option<Body>, Option<Pos>, Option<u64>)>;

fn state(world: &mut World) -> State {
    let ids: BTreeMap<Entity, u64> = world
        .query::<(Entity, &PersistentId)>()
        .iter(world)
        .map(|(e, p)| (e, p.0))
        .collect();
    world
        .query_filtered::<(Entity, Option<&Body>, Option<&Pos>, Option<&ChildOf>), With<Persist>>()
        .iter(world)
        .map(|(e, b, p, c)| {
            (
                ids[&e],
                (b.cloned(), p.copied(), c.map(|c| ids[&c.parent()])),
            )
        })
        .collect()
}

/// Writer `rank`'s world: three bodies (entity groups) with a position (table rows), each
/// with a child that has only a position.
fn populate(world: &mut World, rank: usize) {
    world.insert_resource(Clock { step: 0 });
    for k in 0..3 {
        let body = world
            .spawn((
                Persist,
                Body {
                    name: format!("r{rank}-{k}"),
                    mass: (rank * 10 + k) as f64,
                },
                Pos {
                    x: k as f64,
                    tag: (k % 2 == 0).then_some(k as i32),
                },
            ))
            .id();
        world.spawn((
            Persist,
            Pos {
                x: -(k as f64),
                tag: None,
            },
            ChildOf(body),
        ));
    }
}

fn step(world: &mut World) {
    for mut p in world.query::<&mut Pos>().iter_mut(world) {
        p.x += 1.0;
    }
    world.resource_mut::<Clock>().step += 1;
}

/// Runs `size` writers for `ticks` commits on `run`, from scratch or resumed, keeping history
/// if `history`; returns each writer's state after each tick.
fn run_team(run: &Path, size: usize, ticks: usize, resume: bool, history: bool) -> Vec<Vec<State>> {
    let handles: Vec<_> = Threads::team(size)
        .into_iter()
        .map(|comm| {
            let run = run.to_path_buf();
            std::thread::spawn(move || {
                let mut world = World::new();
                let rank = comm.rank;
                let mut sync = if resume {
                    ShardedSync::resume(&mut world, &run, &registry(), comm)
                        .unwrap()
                        .0
                } else {
                    populate(&mut world, rank);
                    ShardedSync::create(&run, &registry(), comm).unwrap()
                };
                if history {
                    let history = h5pom_ecs::History::new().step_time(|w| {
                        let step = w.get_resource::<Clock>().map_or(0, |c| c.step);
                        (i64::try_from(step).unwrap_or(i64::MAX), f64::NAN)
                    });
                    sync.keep_history(history).unwrap();
                }
                let mut states = Vec::new();
                for _ in 0..ticks {
                    step(&mut world);
                    let f = sync.flush(&mut world).unwrap();
                    assert_eq!(f.tick, sync.tick());
                    world.clear_trackers();
                    states.push(state(&mut world));
                }
                if states.is_empty() {
                    states.push(state(&mut world));
                }
                states
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Each writer's final state after `ticks` commits (no history).
fn run_writers(run: &Path, size: usize, ticks: usize, resume: bool) -> Vec<State> {
    run_team(run, size, ticks, resume, false)
        .into_iter()
        .map(|mut s| s.pop().unwrap())
        .collect()
}

fn merged(states: &[State]) -> State {
    states.iter().flat_map(|s| s.clone()).collect()
}

fn load_all(run: &Path) -> (State, World) {
    let mut world = World::new();
    registry().load(&mut world, run).unwrap();
    (state(&mut world), world)
}

fn exists(p: PathBuf) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[test]
fn two_writers_commit_one_world_that_loads_on_any_number_of_readers() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    let states = run_writers(&run, 2, 3, false);
    // Ids are unique without any exchange: writer r holds ids with (id - 1) % 2 == r.
    for (r, s) in states.iter().enumerate() {
        assert_eq!(s.len(), 6);
        assert!(s.keys().all(|id| (id - 1) % 2 == r as u64), "{s:?}");
    }
    let all = merged(&states);
    assert_eq!(all.len(), 12);
    let (loaded, world) = load_all(&run);
    assert_eq!(loaded, all);
    assert_eq!(world.resource::<Clock>().step, 3);
    assert_eq!(Shards::find(&run).unwrap().tick, 3);

    // Any number of readers: disjoint shares that add up to the world, trees kept whole.
    for readers in [1, 2, 3, 5] {
        let mut union = State::new();
        for reader in 0..readers {
            let mut w = World::new();
            let l = registry()
                .load_share(&mut w, &run, reader, readers)
                .unwrap();
            assert_eq!(l.total_entities, 12);
            assert_eq!(l.report.tick, 3);
            let share = state(&mut w);
            for (id, v) in &share {
                if let Some(parent) = v.2 {
                    assert!(share.contains_key(&parent), "child {id} without its parent");
                }
                assert!(union.insert(*id, v.clone()).is_none(), "{id} loaded twice");
            }
            // Six trees: at most two per reader more than another.
            assert!(
                share.len() >= 2 * (6 / readers),
                "{readers}: {}",
                share.len()
            );
            assert_eq!(w.resource::<Clock>().step, 3);
        }
        assert_eq!(union, all, "{readers} readers");
    }
}

#[test]
fn the_run_file_reads_as_one_world_without_h5pom() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    // Three ticks: the run file's slots are written whole at ticks 1 and 2, and at tick 3 the
    // slot of tick 1 only gets the new counters (nothing changed shape).
    let states = run_writers(&run, 2, 3, false);
    let all = merged(&states);
    let f = hdf5::File::open(&run).unwrap();
    let ecs = f.group("ecs").unwrap();
    let tick: u64 = ecs.attr("tick").unwrap().read_scalar().unwrap();
    assert_eq!(tick, 3);
    let index: Vec<u64> = f.dataset("ecs/index").unwrap().read_raw().unwrap();
    assert_eq!(index, all.keys().copied().collect::<Vec<_>>());
    // Table rows of both shards, stacked; every persisted position once.
    let ids: Vec<u64> = f
        .dataset("ecs/tables/Pos/entity")
        .unwrap()
        .read_raw()
        .unwrap();
    let xs: Vec<f64> = f.dataset("ecs/tables/Pos/x").unwrap().read_raw().unwrap();
    let none: Vec<u8> = f
        .dataset("ecs/tables/Pos/tag-none")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(ids.len(), 12);
    for ((id, x), n) in ids.iter().zip(&xs).zip(&none) {
        let pos = all[id].1.unwrap();
        assert_eq!(pos.x, *x);
        assert_eq!(pos.tag.is_none(), *n == 1);
    }
    // Entity groups through external links.
    for (id, (body, _, _)) in &all {
        if let Some(b) = body {
            let g = f.group(&h5pom_ecs::layout::entity_path(*id)).unwrap();
            let mass: f64 = g.attr("Body.mass").unwrap().read_scalar().unwrap();
            assert_eq!(mass, b.mass);
        }
    }
    let step: u64 = f
        .group("ecs/resources/Clock")
        .unwrap()
        .attr("step")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert_eq!(step, 3);
}

#[test]
fn a_resume_changes_the_number_of_writers_and_retires_the_old_shards() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    run_writers(&run, 2, 2, false);
    let straight = {
        let dir2 = tempfile::tempdir().unwrap();
        let run2 = dir2.path().join("run.h5");
        merged(&run_writers(&run2, 2, 5, false))
    };
    // 2 writers → 3 writers (1 tick) → 1 writer (2 ticks): the same world as 5 straight ticks.
    let three = merged(&run_writers(&run, 3, 1, true));
    assert_eq!(three.len(), 12);
    assert!(!exists(shard_path(&run, 0, 0)) && !exists(shard_path(&run, 0, 1)));
    assert!(exists(shard_path(&run, 1, 2)));
    let mut world = World::new();
    let (mut one, loaded) = ShardedSync::resume(&mut world, &run, &registry(), Solo).unwrap();
    assert_eq!(loaded.report.tick, 3);
    assert_eq!(loaded.writers, 3);
    for _ in 0..2 {
        step(&mut world);
        one.flush(&mut world).unwrap();
        world.clear_trackers();
    }
    assert_eq!(state(&mut world), straight);
    drop(one);
    assert!((0..3).all(|r| !exists(shard_path(&run, 1, r))));
    let (loaded, w) = load_all(&run);
    assert_eq!(loaded, straight);
    assert_eq!(w.resource::<Clock>().step, 5);
    // New entities after the resume get ids of their own lane, above every stored one.
    let max = *straight.keys().max().unwrap();
    let mut world = World::new();
    let (mut again, _) = ShardedSync::resume(&mut world, &run, &registry(), Solo).unwrap();
    let e = world.spawn((Persist, Pos { x: 0.0, tag: None })).id();
    again.flush(&mut world).unwrap();
    assert!(world.get::<PersistentId>(e).unwrap().0 > max);
}

#[test]
fn a_writer_ahead_of_the_others_is_read_at_the_last_common_tick() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    let at_two = merged(&run_writers(&run, 2, 2, false));
    // Writer 0 commits tick 3 in its own shard; writer 1 never does (killed before).
    let mut world = World::new();
    let shards = Shards::find(&run).unwrap();
    assert_eq!(shards.tick, 2);
    {
        let mut sync = h5pom_ecs::H5Sync::resume(&mut world, shard_path(&run, 0, 0), &registry())
            .unwrap()
            .0;
        step(&mut world);
        sync.flush_now(&mut world).unwrap();
        assert_eq!(sync.flushes(), 3);
    }
    let shards = Shards::find(&run).unwrap();
    assert_eq!(shards.tick, 2, "the common tick");
    let (loaded, _) = load_all(&run);
    assert_eq!(loaded, at_two);
    // Until recovered, the run file's links follow writer 0's link to its tick 3.
    let tick_of = |p: PathBuf| {
        let f = hdf5::File::open(p).unwrap();
        f.group("ecs")
            .unwrap()
            .attr("tick")
            .unwrap()
            .read_scalar::<u64>()
            .unwrap()
    };
    assert_eq!(tick_of(shard_path(&run, 0, 0)), 3);
    let r = h5pom_ecs::recover(&run).unwrap();
    assert_eq!(r.tick, 2);
    assert_eq!(tick_of(shard_path(&run, 0, 0)), 2);
    assert_eq!(tick_of(shard_path(&run, 0, 1)), 2);
    assert_eq!(tick_of(run.clone()), 2);
    // Through the run file (links into the shards), every value is tick 2's.
    let f = hdf5::File::open(&run).unwrap();
    let ids: Vec<u64> = f
        .dataset("ecs/tables/Pos/entity")
        .unwrap()
        .read_raw()
        .unwrap();
    let xs: Vec<f64> = f.dataset("ecs/tables/Pos/x").unwrap().read_raw().unwrap();
    for (id, x) in ids.iter().zip(&xs) {
        assert_eq!(at_two[id].1.unwrap().x, *x, "entity {id}");
    }
    drop(f);
    let (loaded, _) = load_all(&run);
    assert_eq!(loaded, at_two);
    // A resume goes on from the common tick.
    let mut world = World::new();
    let (_, l) = ShardedSync::resume(&mut world, &run, &registry(), Solo).unwrap();
    assert_eq!(l.report.tick, 2);
    assert_eq!(state(&mut world), at_two);
}

#[test]
fn an_ordinary_run_is_refused_by_h5sync_resume_only_when_sharded() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    run_writers(&run, 1, 1, false);
    let mut world = World::new();
    let Err(err) = h5pom_ecs::H5Sync::resume(&mut world, &run, &registry()) else {
        panic!("a sharded run resumed as an ordinary one");
    };
    assert!(matches!(err, h5pom_ecs::EcsError::Sharded { .. }), "{err}");
}

#[test]
fn a_sharded_snapshot_loads_and_resumes_into_a_new_run_on_other_writer_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (run, snap) = (dir.path().join("run.h5"), dir.path().join("snap.h5"));
    // Two writers: 2 ticks, a snapshot, 2 more ticks.
    let handles: Vec<_> = Threads::team(2)
        .into_iter()
        .map(|comm| {
            let (run, snap) = (run.clone(), snap.clone());
            std::thread::spawn(move || {
                let mut world = World::new();
                populate(&mut world, comm.rank);
                let mut sync = ShardedSync::create(&run, &registry(), comm).unwrap();
                let mut at_snapshot = State::new();
                for t in 1..=4 {
                    step(&mut world);
                    sync.flush(&mut world).unwrap();
                    world.clear_trackers();
                    if t == 2 {
                        sync.snapshot(&mut world, &snap).unwrap();
                        at_snapshot = state(&mut world);
                    }
                }
                at_snapshot
            })
        })
        .collect();
    let at_snapshot = merged(
        &handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(at_snapshot.len(), 12);
    // The snapshot: one run file over two ordinary files, loaded whole or shared.
    assert!(
        std::fs::symlink_metadata(shard_path(&snap, 0, 1))
            .unwrap()
            .is_file()
    );
    let (loaded, w) = load_all(&snap);
    assert_eq!(loaded, at_snapshot);
    assert_eq!(w.resource::<Clock>().step, 2);
    // Resumed from the snapshot into a new run on 3 writers, 2 ticks: the state of tick 4.
    let straight = merged(&run_writers(&dir.path().join("s.h5"), 2, 4, false));
    let out = dir.path().join("again.h5");
    let handles: Vec<_> = Threads::team(3)
        .into_iter()
        .map(|comm| {
            let (snap, out) = (snap.clone(), out.clone());
            std::thread::spawn(move || {
                let mut world = World::new();
                let (mut sync, l) =
                    ShardedSync::resume_from(&mut world, &snap, &out, &registry(), comm).unwrap();
                assert_eq!(l.report.tick, 1);
                for _ in 0..2 {
                    step(&mut world);
                    sync.flush(&mut world).unwrap();
                    world.clear_trackers();
                }
                state(&mut world)
            })
        })
        .collect();
    let resumed = merged(
        &handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(resumed, straight);
    assert_eq!(load_all(&out).0, straight);
    // The snapshot is untouched by the new run.
    assert_eq!(load_all(&snap).0, at_snapshot);
}

/// `size` writers keeping history, `ticks` commits (from scratch or resumed in place): the
/// merged state after each tick.
fn run_with_history(run: &Path, size: usize, ticks: usize, resume: bool) -> Vec<State> {
    let per_writer = run_team(run, size, ticks, resume, true);
    (0..ticks)
        .map(|t| merged(&per_writer.iter().map(|w| w[t].clone()).collect::<Vec<_>>()))
        .collect()
}

fn load_at(run: &Path, step: i64) -> (State, u64) {
    let mut world = World::new();
    registry().load_at(&mut world, run, step).unwrap();
    (state(&mut world), world.resource::<Clock>().step)
}

#[test]
fn a_sharded_history_reloads_any_step_across_a_change_of_writer_count() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    let mut states = run_with_history(&run, 2, 4, false);
    for (k, s) in states.iter().enumerate() {
        let step = k as i64 + 1;
        assert_eq!(load_at(&run, step), (s.clone(), step as u64), "step {step}");
    }
    // The run file's `/ecs/history/Pos`: both shards side by side, every sample.
    {
        let f = hdf5::File::open(&run).unwrap();
        let ids: Vec<u64> = f
            .dataset("ecs/history/Pos/entity")
            .unwrap()
            .read_raw()
            .unwrap();
        let x = f.dataset("ecs/history/Pos/x").unwrap();
        assert_eq!(x.shape(), vec![4, 12]);
        let x: Vec<f64> = x.read_raw().unwrap();
        for (k, s) in states.iter().enumerate() {
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(x[k * 12 + i], s[id].1.unwrap().x, "sample {k}, entity {id}");
            }
        }
    }
    // Resumed on 3 writers (a new generation; the old one is kept for its history).
    states.extend(run_with_history(&run, 3, 2, true));
    assert!(std::fs::symlink_metadata(shard_path(&run, 0, 0)).is_ok());
    assert!(std::fs::symlink_metadata(shard_path(&run, 1, 2)).is_ok());
    for (k, s) in states.iter().enumerate() {
        let step = k as i64 + 1;
        assert_eq!(load_at(&run, step), (s.clone(), step as u64), "step {step}");
    }
    // The same as six straight ticks.
    let straight = merged(&run_writers(&dir.path().join("s.h5"), 2, 6, false));
    assert_eq!(states[5], straight);
    assert!(registry().load_at(&mut World::new(), &run, 0).is_err());
}
