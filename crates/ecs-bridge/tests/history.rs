//! History mode: random worlds changed over many ticks reload exactly at every stored step,
//! unchanged types add no sample, series read one entity's column, and samples of a tick
//! that was never committed are cut off.

use std::collections::BTreeMap;

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom_ecs::history::HistoryReader;
use h5pom_ecs::{Durability, H5Sync, History, Persist, PersistentId, Registry};
use h5pom_store::Value;
use proptest::prelude::*;

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Pos {
    x: f64,
    tag: Option<i32>,
    on: bool,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Person {
    name: String,
    age: u32,
    friend: Option<Entity>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Cloud {
    mass: f64,
    positions: ndarray::Array2<f32>,
    ids: ndarray::Array1<u64>,
}

#[derive(Component, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Constant {
    k: i64,
}

#[derive(Resource, h5pom_derive::Object, Clone, Debug, PartialEq)]
#[h5pom(crate = "h5pom_store")]
struct Clock {
    step: i64,
    t: f64,
    /// An array field of a resource: kept as frames too.
    recent: ndarray::Array1<f64>,
}

fn registry() -> Registry {
    Registry::new()
        .table::<Pos>()
        .component::<Person>()
        .table::<Constant>()
        .component::<Cloud>()
        .resource::<Clock>()
        .hierarchy()
}

fn history() -> History {
    History::new().step_time(|w| {
        let c = w.resource::<Clock>();
        (c.step, c.t)
    })
}

/// A world by persistent id: every component, `Entity` fields and parents as persistent ids.
type Row = (
    Option<Pos>,
    Option<(String, u32, Option<u64>)>,
    Option<u64>,
    Option<Cloud>,
);
type State = (BTreeMap<u64, Row>, Option<Clock>);

fn state(world: &mut World) -> State {
    let mut q = world.query_filtered::<Entity, With<Persist>>();
    let es: Vec<Entity> = q.iter(world).collect();
    let pid = |w: &World, e: Entity| w.get::<PersistentId>(e).map(|p| p.0);
    let mut out = BTreeMap::new();
    for e in es {
        let person = world
            .get::<Person>(e)
            .map(|p| (p.name.clone(), p.age, p.friend.and_then(|f| pid(world, f))));
        let parent = world.get::<ChildOf>(e).and_then(|c| pid(world, c.parent()));
        out.insert(
            pid(world, e).unwrap_or(0),
            (
                world.get::<Pos>(e).cloned(),
                person,
                parent,
                world.get::<Cloud>(e).cloned(),
            ),
        );
    }
    (out, world.get_resource::<Clock>().cloned())
}

/// A small deterministic generator (the proptest seed drives it).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn mutate(world: &mut World, rng: &mut Lcg, step: i64) {
    {
        let mut c = world.resource_mut::<Clock>();
        c.step = step;
        c.t = step as f64 * 0.25;
        c.recent = ndarray::Array1::from_shape_fn(1 + (step as usize / 10) % 4, |i| i as f64 + c.t);
    }
    let mut q = world.query_filtered::<Entity, With<Persist>>();
    let mut es: Vec<Entity> = q.iter(world).collect();
    es.sort();
    for _ in 0..rng.below(4) {
        let Some(&e) = es.get(rng.below(es.len() as u64) as usize) else {
            break;
        };
        // (Despawning a parent despawns its children too.)
        es.retain(|&x| world.get_entity(x).is_ok());
        if world.get_entity(e).is_err() {
            continue;
        }
        if let Some(mut c) = world.get_mut::<Cloud>(e) {
            // Arrays change value, and sometimes shape.
            let n = c.positions.nrows() + (rng.below(2) as usize);
            c.positions =
                ndarray::Array2::from_shape_fn((n, 3), |(i, j)| (i * 3 + j) as f32 + step as f32);
            c.ids = ndarray::Array1::from_shape_fn(n, |i| i as u64 * 7);
            c.mass += 0.5;
            continue;
        }
        match rng.below(6) {
            0 => {
                if let Some(mut p) = world.get_mut::<Pos>(e) {
                    p.x += 1.5;
                    p.tag = if p.tag.is_some() {
                        None
                    } else {
                        Some(step as i32)
                    };
                }
            }
            1 => {
                world.entity_mut(e).remove::<Pos>();
            }
            2 => {
                let friend = es.get(rng.below(es.len() as u64) as usize).copied();
                if let Some(mut p) = world.get_mut::<Person>(e) {
                    p.age += 1;
                    p.friend = friend.filter(|&f| f != e);
                }
            }
            3 => {
                world.entity_mut(e).despawn();
                es.retain(|&x| x != e);
            }
            4 => {
                if let Some(&p) = es.get(rng.below(es.len() as u64) as usize)
                    && p != e
                    && world.get::<ChildOf>(p).is_none()
                {
                    world.entity_mut(e).insert(ChildOf(p));
                }
            }
            _ => {
                world.entity_mut(e).insert(Pos {
                    x: -(step as f64),
                    tag: None,
                    on: step % 2 == 0,
                });
            }
        }
    }
    // No reference to a despawned entity (that is the flush's error, not history's).
    let mut q = world.query::<&mut Person>();
    let friends: Vec<Option<Entity>> = q.iter(world).map(|p| p.friend).collect();
    let dead: Vec<Entity> = friends
        .into_iter()
        .flatten()
        .filter(|&f| world.get_entity(f).is_err())
        .collect();
    for mut p in q.iter_mut(world) {
        if p.friend.is_some_and(|f| dead.contains(&f)) {
            p.friend = None;
        }
    }
    if rng.below(3) == 0 {
        let n = rng.below(1000);
        world.spawn((
            Persist,
            Person {
                name: format!("p{n}"),
                age: n as u32,
                friend: None,
            },
            Constant { k: 7 },
        ));
    }
}

/// A world holding only the `Clock` resource, at step 0 with `recent` of length `n`.
fn clock_world(n: usize) -> World {
    let mut world = World::new();
    world.insert_resource(Clock {
        step: 0,
        t: 0.0,
        recent: ndarray::Array1::zeros(n),
    });
    world
}

/// Resumes `path` with history, sets the clock to `step`, changes every `Pos` with `f` and
/// flushes once.
fn resume_tick(path: &std::path::Path, step: i64, f: impl Fn(&mut Pos)) {
    let mut w = World::new();
    let (mut sync, _) = H5Sync::resume(&mut w, path, &registry()).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    w.insert_resource(sync);
    w.resource_mut::<Clock>().step = step;
    let mut q = w.query::<&mut Pos>();
    q.iter_mut(&mut w).for_each(|mut p| f(&mut p));
    tick(&mut w);
    w.remove_resource::<H5Sync>();
}

fn tick(world: &mut World) {
    world
        .resource_scope(|w, mut s: Mut<H5Sync>| s.tick(w))
        .unwrap();
    world.clear_trackers();
}

fn run(seed: u64, durability: Durability, ticks: i64) {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), seed, durability, ticks, None, true)
}

fn run_in(
    dir: &std::path::Path,
    seed: u64,
    durability: Durability,
    ticks: i64,
    filters: Option<h5pom_store::Filters>,
    share: bool,
) {
    let path = dir.join("run.h5");
    let mut world = clock_world(1);
    for i in 0..3 {
        world.spawn((
            Persist,
            Cloud {
                mass: i as f64,
                positions: ndarray::Array2::zeros((2 + i, 3)),
                ids: ndarray::Array1::zeros(2 + i),
            },
        ));
    }
    for i in 0..6 {
        world.spawn((
            Persist,
            Pos {
                x: i as f64,
                tag: Some(i),
                on: true,
            },
            Constant { k: 7 },
        ));
    }
    let mut sync = H5Sync::create_with(&path, &registry(), durability).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    sync.set_share_encoded(share);
    if let Some(f) = filters {
        sync.set_array_options(h5pom_store::ArrayOptions::with_filters(f));
    }
    world.insert_resource(sync);
    let mut rng = Lcg(seed);
    let mut expected = BTreeMap::new();
    tick(&mut world);
    expected.insert(0, state(&mut world));
    for step in 1..=ticks {
        mutate(&mut world, &mut rng, step * 10);
        tick(&mut world);
        expected.insert(step * 10, state(&mut world));
    }
    world.remove_resource::<H5Sync>();

    for (&step, want) in &expected {
        let mut again = World::new();
        registry().load_at(&mut again, &path, step).unwrap();
        assert_eq!(&state(&mut again), want, "seed {seed}, step {step}");
        // A step between two samples is the earlier one.
        let mut between = World::new();
        registry().load_at(&mut between, &path, step + 5).unwrap();
        assert_eq!(&state(&mut between), want, "seed {seed}, step {}", step + 5);
    }
    // The last step equals a plain load of the current state.
    let mut current = World::new();
    registry().load(&mut current, &path).unwrap();
    let last = expected.values().next_back().unwrap();
    assert_eq!(&state(&mut current), last);

    // The constant component was sampled once (and again only when entities with it came
    // or went), never for unchanged values.
    let reader = HistoryReader::open(&path).unwrap();
    let steps = reader.steps("Constant").unwrap();
    assert!(!steps.is_empty());
    assert!(steps.len() <= 1 + ticks as usize);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn random_worlds_reload_exactly_at_every_step(seed in any::<u64>()) {
        run(seed, Durability::Process, 12);
    }
}

#[test]
fn compressed_histories_reload_exactly() {
    // Shared encoding (the default) and each file encoding its own (the same files).
    for (f, share) in [
        (h5pom_store::Filters::lz4(), true),
        (h5pom_store::Filters::zstd(3), true),
        (h5pom_store::Filters::deflate(1), true),
        (h5pom_store::Filters::deflate(1), false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        run_in(dir.path(), 11, Durability::Process, 8, Some(f), share);
        let side = h5pom_store::File::open_read_only(
            dir.path().join("run.h5.history"),
            h5pom_store::Schema::new(),
        )
        .unwrap();
        let ds = side
            .hdf5()
            .dataset("ecs/history/Cloud/1/positions")
            .unwrap();
        assert!(
            !ds.filters().is_empty(),
            "{f:?}: the history's arrays are compressed"
        );
    }
}

#[test]
fn unprotected_and_in_memory_syncs_keep_history_too() {
    run(7, Durability::Unprotected, 8);
    let mut world = clock_world(1);
    world.spawn((Persist, Constant { k: 1 }));
    let mut sync = H5Sync::in_memory(&registry()).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    world.insert_resource(sync);
    tick(&mut world);
    assert!(world.resource::<H5Sync>().keeps_history());
}

#[test]
fn series_reads_one_entity_and_unchanged_types_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.h5");
    let mut world = clock_world(1);
    let a = world
        .spawn((
            Persist,
            Pos {
                x: 0.0,
                tag: None,
                on: true,
            },
            Constant { k: 1 },
        ))
        .id();
    let mut sync = H5Sync::create(&path, &registry()).unwrap();
    sync.keep_history(&registry(), history().skip::<Clock>())
        .unwrap();
    world.insert_resource(sync);
    tick(&mut world);
    for step in 1..=5 {
        world.resource_mut::<Clock>().step = step;
        if step != 3 {
            world.get_mut::<Pos>(a).unwrap().x = step as f64;
        }
        if step == 4 {
            world.get_mut::<Pos>(a).unwrap().tag = Some(4);
        }
        tick(&mut world);
    }
    let id = world.get::<PersistentId>(a).unwrap().0;
    world.remove_resource::<H5Sync>();
    let r = HistoryReader::open(&path).unwrap();
    // Step 3 changed nothing of Pos: no sample.
    assert_eq!(r.steps("Pos").unwrap(), [0, 1, 2, 4, 5]);
    assert_eq!(r.steps("Constant").unwrap(), [0]);
    assert!(r.steps("Clock").unwrap().is_empty(), "skipped");
    let xs: Vec<(i64, Option<Value>)> = r.series("Pos", "x", id).unwrap();
    assert_eq!(
        xs,
        [0.0, 1.0, 2.0, 4.0, 5.0]
            .iter()
            .zip([0, 1, 2, 4, 5])
            .map(|(&x, s)| (s, Some(Value::F64(x))))
            .collect::<Vec<_>>()
    );
    let tags = r.series("Pos", "tag", id).unwrap();
    assert_eq!(tags[3], (4, Some(Value::I32(4))));
    assert_eq!(tags[2], (2, None));
}

#[test]
fn read_consistent_follows_the_write_sequence() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.h5");
    let mut world = clock_world(1);
    world.spawn((
        Persist,
        Pos {
            x: 0.0,
            tag: None,
            on: true,
        },
    ));
    let mut sync = H5Sync::create(&path, &registry()).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    world.insert_resource(sync);
    for _ in 0..3 {
        tick(&mut world);
        world.resource_mut::<Clock>().step += 1;
        for mut p in world.query::<&mut Pos>().iter_mut(&mut world) {
            p.x += 1.0;
        }
    }
    let seq = h5pom_ecs::history::seq_path(&dir.path().join("run.h5.history"));
    let number = || -> u64 {
        std::fs::read_to_string(&seq)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // While the writer runs it holds the sequence file; between flushes the number is even.
    let n = number();
    assert_eq!(n % 2, 0, "{n}");
    assert!(n >= 6, "one begin/end pair per flush and one at open: {n}");
    let mut seq_file = std::fs::File::open(&seq).unwrap();
    assert!(seq_file.try_lock_shared().is_err(), "the writer holds it");
    let steps = |r: &HistoryReader| r.steps("Pos");
    assert_eq!(
        HistoryReader::read_consistent(&path, 3, steps).unwrap(),
        [0, 1, 2]
    );
    world.remove_resource::<H5Sync>();
    // A writer killed mid-append leaves the number odd: with no live writer, still readable.
    std::fs::write(&seq, format!("{:020}\n", n + 1)).unwrap();
    assert_eq!(
        HistoryReader::read_consistent(&path, 3, steps).unwrap(),
        [0, 1, 2]
    );
    // Odd and held (a live writer mid-append): every attempt is refused.
    seq_file.lock().unwrap();
    let err = HistoryReader::read_consistent(&path, 3, steps).unwrap_err();
    assert!(
        err.to_string().contains("appended during every attempt"),
        "{err}"
    );
    seq_file.unlock().unwrap();
    // A second writer of the same history is refused while the first runs.
    let mut again = World::new();
    let (mut sync, _) = H5Sync::resume(&mut again, &path, &registry()).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    let (mut other, _) = H5Sync::resume(&mut World::new(), &path, &registry()).unwrap();
    let err = other.keep_history(&registry(), history()).unwrap_err();
    assert!(err.to_string().contains("another writer"), "{err}");
    let _ = seq_file.flush();
}

#[test]
fn samples_of_an_uncommitted_tick_are_cut_off_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.h5");
    let mut world = clock_world(1);
    let a = world
        .spawn((
            Persist,
            Pos {
                x: 0.0,
                tag: None,
                on: true,
            },
        ))
        .id();
    let mut sync = H5Sync::create(&path, &registry()).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    world.insert_resource(sync);
    tick(&mut world);
    world.resource_mut::<Clock>().step = 1;
    world.get_mut::<Pos>(a).unwrap().x = 1.0;
    tick(&mut world);
    world.remove_resource::<H5Sync>();
    // A later run appends a sample of tick 3 and dies before committing it: simulated by
    // rolling the run file back to tick 2 (the committed slot of a pair holds the tick).
    let committed = HistoryReader::open(&path).unwrap().committed_tick();
    resume_tick(&path, 2, |p| p.x = 2.0);
    let r = HistoryReader::open(&path).unwrap();
    assert_eq!(r.steps("Pos").unwrap(), [0, 1, 2]);
    assert_eq!(r.committed_tick(), committed + 1);
    drop(r);
    // Resuming at the earlier tick again (the pair's other slot) drops step 2's sample.
    let slots = h5pom_ecs::slot_paths(&path);
    let older = slots
        .iter()
        .find(|s| {
            h5pom_store::File::open_read_only(s, h5pom_store::Schema::new())
                .ok()
                .and_then(|f| f.hdf5().group("ecs").ok())
                .and_then(|g| g.attr("tick").ok())
                .and_then(|a| a.read_scalar::<u64>().ok())
                == Some(committed)
        })
        .unwrap()
        .clone();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(older.file_name().unwrap(), &path).unwrap();
    let mut w = World::new();
    let (mut sync, _) = H5Sync::resume(&mut w, &path, &registry()).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    drop(sync);
    let r = HistoryReader::open(&path).unwrap();
    assert_eq!(
        r.steps("Pos").unwrap(),
        [0, 1],
        "the uncommitted sample is gone"
    );
}

/// The run file's `/ecs/history` mirrors the history file: every dataset reads the same
/// through the run file as in the history file, including after entities were added (the
/// entity axis grew) and for the per-entity array series.
fn assert_mirrors_match(path: &std::path::Path) {
    use h5pom_store::reexports::hdf5;
    let side = path.with_file_name("run.h5.history");
    let run = hdf5::File::open(path).unwrap();
    let hist = hdf5::File::open(&side).unwrap();
    let mirror = run.group("ecs/history").unwrap();
    assert_eq!(
        mirror
            .attr("mirror-of")
            .unwrap()
            .read_scalar::<hdf5::types::VarLenUnicode>()
            .unwrap()
            .as_str(),
        "run.h5.history"
    );
    let mut seen = 0;
    let mut stack = vec!["ecs/history".to_owned()];
    while let Some(g) = stack.pop() {
        let src = hist.group(&g).unwrap();
        let dst = run.group(&g).unwrap();
        let mut names = src.member_names().unwrap();
        let mut mirrored = dst.member_names().unwrap();
        names.sort();
        mirrored.sort();
        assert_eq!(names, mirrored, "{g}");
        for n in names {
            let here = format!("{g}/{n}");
            if src.group(&n).is_ok() {
                stack.push(here);
                continue;
            }
            let (a, b) = (src.dataset(&n).unwrap(), dst.dataset(&n).unwrap());
            assert!(
                b.layout() == hdf5::dataset::Layout::Virtual || b.size() == 0,
                "{here} is a mirror"
            );
            assert_eq!(a.shape(), b.shape(), "{here}");
            use hdf5::types::TypeDescriptor as T;
            let numeric = matches!(
                a.dtype().unwrap().to_descriptor().unwrap(),
                T::Integer(_) | T::Unsigned(_) | T::Float(_)
            );
            if numeric {
                let (x, y) = (a.read_raw::<f64>(), b.read_raw::<f64>());
                match (x, y) {
                    (Ok(x), Ok(y)) => {
                        let same = x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits());
                        assert!(same && x.len() == y.len(), "{here}");
                    }
                    (x, y) => panic!("{here}: {x:?} {y:?}"),
                }
            }
            seen += 1;
        }
    }
    assert!(seen > 20, "{seen} datasets mirrored");
}

#[test]
fn the_run_file_mirrors_the_history_file() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), 7, Durability::Process, 8, None, true);
    assert_mirrors_match(&dir.path().join("run.h5"));
}

/// A run written by layout version 3 (`/ecs/history` an external link to the history file)
/// reads as before, and resuming it turns the link into mirrors (layout version 4).
#[test]
fn a_version_3_run_reads_and_resumes_into_mirrors() {
    use h5pom_store::reexports::hdf5;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.h5");
    run_in(dir.path(), 11, Durability::Process, 4, None, true);
    let want = HistoryReader::open(&path).unwrap().steps("Pos").unwrap();
    for slot in h5pom_ecs::slot_paths(&path) {
        let f = hdf5::File::open_rw(&slot).unwrap();
        let ecs = f.group("ecs").unwrap();
        ecs.unlink("history").unwrap();
        ecs.link_external("run.h5.history", "/ecs/history", "history")
            .unwrap();
        ecs.attr("layout-version")
            .unwrap()
            .write_scalar(&3u64)
            .unwrap();
    }
    let r = HistoryReader::open(&path).unwrap();
    assert_eq!(r.steps("Pos").unwrap(), want);
    drop(r);
    let mut w = World::new();
    registry().load_at(&mut w, &path, want[1]).unwrap();

    resume_tick(&path, 1000, |p| p.x += 1.0);
    let f = hdf5::File::open(&path).unwrap();
    let version: u64 = f
        .group("ecs")
        .unwrap()
        .attr("layout-version")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert_eq!(version, 4);
    drop(f);
    assert_mirrors_match(&path);
    let steps = HistoryReader::open(&path).unwrap().steps("Pos").unwrap();
    assert_eq!(steps.len(), want.len() + 1);
    assert_eq!(steps.last(), Some(&1000));
}

/// `H5Sync::rewind_with`: the run goes on from a stored step in place; the history keeps the
/// samples up to that step and continues with the new ones, and every step reloads exactly.
#[test]
fn rewinding_in_place_cuts_the_history_after_the_step() {
    for durability in [Durability::Process, Durability::Unprotected] {
        rewind_case(durability);
    }
}

/// One durability of [`rewinding_in_place_cuts_the_history_after_the_step`], flushing in the
/// background (the mirrors are written in the tick, the arrays by the writer thread).
fn rewind_case(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.h5");
    let mut world = clock_world(2);
    for i in 0..3 {
        world.spawn((
            Persist,
            Pos {
                x: i as f64,
                tag: None,
                on: true,
            },
            Cloud {
                mass: 1.0,
                positions: ndarray::Array2::zeros((4, 3)),
                ids: ndarray::Array1::zeros(4),
            },
        ));
    }
    let set = |w: &mut World, step: i64| {
        w.resource_mut::<Clock>().step = step;
        let mut q = w.query::<(&mut Pos, &mut Cloud)>();
        for (mut p, mut c) in q.iter_mut(w) {
            p.x = step as f64 + p.x.fract();
            c.positions.fill(step as f32);
        }
    };
    let mut sync = H5Sync::create_with(&path, &registry(), durability).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    sync.set_background(durability != Durability::Unprotected)
        .unwrap();
    world.insert_resource(sync);
    let mut expected = BTreeMap::new();
    for step in 0..=5 {
        set(&mut world, step * 10);
        tick(&mut world);
        expected.insert(step * 10, state(&mut world));
    }
    world.remove_resource::<H5Sync>();

    if durability == Durability::Process {
        // Stopped after the new file replaced the old and before its first flush (as a crash
        // there would): the run holds no entity at the kept tick, its history up to that tick
        // reads, and rewinding again (below) works.
        let mut w = World::new();
        let (sync, _) = H5Sync::rewind_with(&mut w, &path, &registry(), durability, 20).unwrap();
        drop(sync);
        let mut empty = World::new();
        registry().load(&mut empty, &path).unwrap();
        assert!(state(&mut empty).0.is_empty());
        let reader = HistoryReader::open(&path).unwrap();
        assert_eq!(reader.steps("Pos").unwrap(), [0, 10, 20]);
    }
    let mut w = World::new();
    let (mut sync, _) = H5Sync::rewind_with(&mut w, &path, &registry(), durability, 20).unwrap();
    sync.keep_history(&registry(), history()).unwrap();
    assert_eq!(state(&mut w), expected[&20], "the world as of step 20");
    w.insert_resource(sync);
    for step in [25, 35] {
        set(&mut w, step);
        tick(&mut w);
        expected.insert(step, state(&mut w));
    }
    w.remove_resource::<H5Sync>();
    let reader = HistoryReader::open(&path).unwrap();
    assert_eq!(reader.steps("Pos").unwrap(), [0, 10, 20, 25, 35]);
    assert_eq!(reader.steps("Cloud").unwrap(), [0, 10, 20, 25, 35]);
    drop(reader);
    for step in [0, 10, 20, 25, 35] {
        let mut again = World::new();
        registry().load_at(&mut again, &path, step).unwrap();
        assert_eq!(state(&mut again), expected[&step], "step {step}");
    }
    let mut current = World::new();
    registry().load(&mut current, &path).unwrap();
    assert_eq!(state(&mut current), expected[&35]);
    assert_mirrors_match(&path);
}
