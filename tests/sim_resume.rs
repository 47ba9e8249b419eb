//! The simulation example (`examples/sim`) end to end: a run interrupted by a snapshot or by
//! stopping, then resumed, ends in exactly the state of an uninterrupted run; and h5py reads
//! from its output the values the simulation reports.
//!
//! The example's engine is included as it is, so this tests the example's own code.

mod common;

#[path = "../examples/sim/engine/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "the example uses parts of the engine the tests do not"
)]
mod engine;

use std::path::{Path, PathBuf};

use bevy_ecs::prelude::*;
use common::Json;
use engine::checksum::world_checksum;
use engine::model::{Particles, schema};
use engine::{Compression, Config, IoOptions, Outcome, SimError};

fn config(out: &Path) -> Config {
    Config {
        particles: 3_000,
        clouds: 3,
        seed: 7,
        ticks: 8,
        out: out.to_path_buf(),
        io: IoOptions::default(),
        flush_every: 1,
        snapshot_every: None,
        snapshot_dir: out.with_extension("snapshots"),
        resume: None,
        durability: h5pom::ecs::Durability::Process,
        log_flushes: false,
        history: false,
        share_encoded: true,
        background: false,
        at_step: None,
    }
}

fn run(cfg: &Config) -> Outcome {
    engine::run(cfg, &mut ()).unwrap_or_else(|e| panic!("run {cfg:?}: {e}"))
}

/// The checksum of the world a file loads into.
fn loaded_checksum(path: &Path) -> String {
    let mut world = World::new();
    schema()
        .registry()
        .load(&mut world, path)
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
    world_checksum(&mut world, &schema())
}

#[test]
fn interrupted_and_resumed_runs_end_exactly_where_a_straight_run_does() {
    let dir = common::temp_dir();
    let at = |name: &str| dir.path().join(name);

    // A: 8 ticks straight, a snapshot every 4 steps.
    let mut a = config(&at("a.h5"));
    a.snapshot_every = Some(4);
    let straight = run(&a);
    assert_eq!((straight.started.start_step, straight.end_step), (0, 8));
    let half: PathBuf = a.snapshot_dir.join("sim-00000004.h5");
    assert_eq!(
        straight.snapshots,
        [half.clone(), a.snapshot_dir.join("sim-00000008.h5")]
    );

    // B: from A's snapshot at step 4, 4 more ticks into a new file, compressed (the state
    // does not depend on how it is stored).
    let mut b = config(&at("b.h5"));
    b.resume = Some(half.clone());
    b.ticks = 4;
    b.io.compression = Compression::Zstd(3);
    let from_snapshot = run(&b);
    assert_eq!(
        (from_snapshot.started.start_step, from_snapshot.end_step),
        (4, 8)
    );

    // C: 4 ticks flushing every 3 (the last tick is flushed anyway), then 4 more continuing
    // the same file in place.
    let mut c = config(&at("c.h5"));
    c.ticks = 4;
    c.flush_every = 3;
    run(&c);
    c.resume = Some(c.out.clone());
    c.flush_every = 1;
    let in_place = run(&c);
    assert_eq!(in_place.started.resumed, Some((c.out.clone(), true)));
    assert_eq!((in_place.started.start_step, in_place.end_step), (4, 8));

    // Same final state, in memory and in every final file.
    assert_eq!(from_snapshot.checksum, straight.checksum);
    assert_eq!(in_place.checksum, straight.checksum);
    assert_eq!(from_snapshot.clouds, straight.clouds);
    for file in [
        &a.out,
        &b.out,
        &c.out,
        &a.snapshot_dir.join("sim-00000008.h5"),
    ] {
        assert_eq!(
            loaded_checksum(file),
            straight.checksum,
            "{}",
            file.display()
        );
    }
    // The half-way snapshot is another state (the checksum is not constant).
    assert_ne!(loaded_checksum(&half), straight.checksum);
}

#[test]
fn the_checksum_sees_one_bit_of_one_particle() {
    let dir = common::temp_dir();
    let mut cfg = config(&dir.path().join("w.h5"));
    cfg.ticks = 2;
    let o = run(&cfg);
    let mut world = World::new();
    schema().registry().load(&mut world, &cfg.out).unwrap();
    assert_eq!(world_checksum(&mut world, &schema()), o.checksum);
    let mut q = world.query::<&mut Particles>();
    let mut p = q.iter_mut(&mut world).next().unwrap();
    let v = p.velocities[[0, 1]];
    p.velocities[[0, 1]] = f32::from_bits(v.to_bits() ^ 1);
    assert_ne!(world_checksum(&mut world, &schema()), o.checksum);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let dir = common::temp_dir();
    let mut cfg = config(&dir.path().join("w.h5"));
    cfg.clouds = 10;
    cfg.particles = 5;
    assert!(matches!(
        engine::run(&cfg, &mut ()),
        Err(SimError::Sizes { .. })
    ));

    // A file that is not a simulation.
    let other = dir.path().join("other.h5");
    let mut world = World::new();
    let registry = h5pom::ecs::Registry::new();
    world.insert_resource(h5pom::ecs::H5Sync::create(&other, &registry).unwrap());
    world.remove_resource::<h5pom::ecs::H5Sync>();
    let mut cfg = config(&dir.path().join("w2.h5"));
    cfg.resume = Some(other);
    let err = engine::run(&cfg, &mut ()).unwrap_err();
    assert!(matches!(err, SimError::NotASimulation { .. }), "{err}");
    // A missing file.
    cfg.resume = Some(dir.path().join("missing.h5"));
    assert!(engine::run(&cfg, &mut ()).is_err());
}

fn bits(v: f32) -> Json {
    Json::int(v.to_bits())
}

#[test]
fn h5py_reads_the_values_the_simulation_reports() {
    let dir = common::temp_dir();
    let mut cfg = config(&dir.path().join("sim.h5"));
    cfg.particles = 2_000;
    cfg.clouds = 2;
    cfg.ticks = 3;
    cfg.io.compression = Compression::Lz4;
    let o = run(&cfg);
    assert!(
        o.flushes.iter().all(|f| f.stored < f.bytes),
        "LZ4 did not compress"
    );
    let clouds: Vec<Json> = o
        .clouds
        .iter()
        .map(|c| {
            Json::obj([
                ("index", Json::int(c.index)),
                ("particles", Json::int(c.particles as u64)),
                // f64 as its bits, to be compared exactly.
                ("kinetic_energy_bits", Json::int(c.kinetic_energy.to_bits())),
                (
                    "first",
                    Json::Arr(c.first.iter().copied().map(bits).collect()),
                ),
            ])
        })
        .collect();
    let expect = Json::obj([
        ("step", Json::int(o.end_step)),
        ("time_bits", Json::int(o.time.to_bits())),
        ("particles", Json::int(o.started.particles)),
        ("ticks_logged", Json::int(o.tick_times.len() as u64)),
        // Shuffle, then the LZ4 plugin filter (hdf5plugin's id).
        (
            "filters",
            Json::Arr(vec![Json::str("32004"), Json::str("shuffle")]),
        ),
        ("clouds", Json::Arr(clouds)),
    ]);
    let expect_path = dir.path().join("expect.json");
    std::fs::write(&expect_path, expect.to_string()).unwrap();
    let out = common::run_py("check_sim_file.py", [&cfg.out, &expect_path]);
    assert!(out.stdout.contains("ok:"), "{}", out.stdout);
}

/// `--history`: the checksum does not change; MDAnalysis reads the output as H5MD and xarray
/// every component history; `--resume --at-step S` from any stored step ends exactly where the
/// straight run does.
#[test]
fn history_runs_reload_at_any_step_and_read_as_h5md() {
    let dir = common::temp_dir();
    let at = |name: &str| dir.path().join(name);
    let plain = run(&config(&at("plain.h5")));
    let mut h = config(&at("hist.h5"));
    h.history = true;
    let with_history = run(&h);
    assert_eq!(
        with_history.checksum, plain.checksum,
        "history changes nothing"
    );

    let ran = common::run_py(
        "check_sim_history.py",
        [at("hist.h5"), at("hist.h5.history")],
    );
    let seen = ran.stdout;
    assert!(
        seen.contains("\"groups\": [\"cloud0\", \"cloud1\", \"cloud2\"]"),
        "{seen}"
    );
    assert!(seen.contains("\"frames\": 8"), "one frame per tick: {seen}");
    assert!(
        seen.contains("\"steps\": [1, 2, 3, 4, 5, 6, 7, 8]"),
        "{seen}"
    );

    for s in [1u64, 4, 7] {
        let mut r = config(&at(&format!("from{s}.h5")));
        r.resume = Some(at("hist.h5"));
        r.at_step = Some(s);
        r.ticks = 8 - s;
        let resumed = run(&r);
        assert_eq!(resumed.started.start_step, s);
        assert_eq!(resumed.checksum, plain.checksum, "resumed at step {s}");
    }
    // In place: the history after the step is cut off and the run goes on from it, ending
    // where the straight run does, with one sample per step and the same frames as h5py
    // reads them in MDAnalysis (the check script again).
    let mut back = config(&at("hist.h5"));
    back.resume = Some(at("hist.h5"));
    back.history = true;
    back.at_step = Some(3);
    back.ticks = 5;
    let rewound = run(&back);
    assert_eq!(rewound.started.start_step, 3);
    assert_eq!(
        rewound.checksum, plain.checksum,
        "rewound in place to step 3"
    );
    assert_eq!(loaded_checksum(&at("hist.h5")), plain.checksum);
    let reader = h5pom::ecs::history::HistoryReader::open(at("hist.h5")).unwrap();
    assert_eq!(
        reader.steps("Particles").unwrap(),
        [1, 2, 3, 4, 5, 6, 7, 8],
        "every step once, those after step 3 rewritten"
    );
    drop(reader);
    let ran = common::run_py(
        "check_sim_history.py",
        [at("hist.h5"), at("hist.h5.history")],
    );
    assert!(
        ran.stdout.contains("\"steps\": [1, 2, 3, 4, 5, 6, 7, 8]"),
        "{}",
        ran.stdout
    );
    // Rewinding to a step before the history's first fails without touching the run.
    let mut early = config(&at("hist.h5"));
    early.resume = Some(at("hist.h5"));
    early.at_step = Some(0);
    early.ticks = 1;
    assert!(engine::run(&early, &mut ()).is_err());
    assert_eq!(loaded_checksum(&at("hist.h5")), plain.checksum);
}
