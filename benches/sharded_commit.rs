//! What rank 0 pays per commit of a sharded run as the number of ranks grows: the run file
//! (links and stacked virtual datasets over every shard), written by the real code path with
//! N shards on this machine. The agreements themselves (two `MPI_Allreduce`s of a few words)
//! are not here: `benches/mpi_flush.sh` measures them on 2 ranks.
//!
//! The N writers run one after another in this process with a communicator that claims to be
//! rank r of N and agrees at once: every shard commits ticks 1 (new entities) and 2 (values),
//! then rank 0 commits 1 (reading every shard, as after any change of shape: "shapes changed"),
//! 2, and 3 (from its cached description: "steady"). Each shard holds a sim-like share: one entity
//! group (a cloud with an array) and three rows in each of four tables.
//!
//! `cargo bench --bench sharded_commit` (`H5POM_BENCH_RANKS=2,10,100,1000` to choose N).

use std::time::Duration;

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom::ecs::{Collective, Persist, Registry, ShardedSync};

#[derive(Component, h5pom::Object, Clone)]
struct Cloud {
    index: u32,
    positions: ndarray::Array2<f32>,
}

#[derive(Component, h5pom::Object, Clone, Copy)]
struct Stats {
    energy: f64,
    top: f32,
}

#[derive(Component, h5pom::Object, Clone, Copy)]
struct Reading {
    step: u64,
    count: u64,
    mean: f64,
}

#[derive(Component, h5pom::Object, Clone)]
struct Label {
    name: String,
}

/// Rank `rank` of `size`, agreeing with itself: every writer committed what this one did.
struct Pretend {
    rank: usize,
    size: usize,
}

impl Collective for Pretend {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_min(&self, _: &mut [u64]) {}
    fn all_max(&self, _: &mut [u64]) {}
    fn all_sum(&self, _: &mut [u64]) {}
}

fn registry() -> Registry {
    Registry::new()
        .component::<Cloud>()
        .table::<Stats>()
        .table::<Reading>()
        .table::<Label>()
        .hierarchy()
}

fn populate(world: &mut World, rank: usize) {
    let cloud = world
        .spawn((
            Persist,
            Cloud {
                index: rank as u32,
                positions: ndarray::Array2::zeros((64, 3)),
            },
            Stats {
                energy: 1.0,
                top: 2.0,
            },
            Label {
                name: format!("cloud-{rank}"),
            },
        ))
        .id();
    for j in 0..2 {
        world.spawn((
            Persist,
            Reading {
                step: 0,
                count: j,
                mean: 0.5,
            },
            Label {
                name: format!("cloud-{rank}-probe-{j}"),
            },
            ChildOf(cloud),
        ));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let ranks: Vec<usize> = std::env::var("H5POM_BENCH_RANKS")
        .unwrap_or_else(|_| "2,10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("ranks  files  run file, shapes changed  run file, steady  run file size");
    for n in ranks {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = dir.path().join("run.h5");
        // Writers 1..n first (their flush writes the shard only), then writer 0.
        for r in (1..n).chain([0]) {
            let mut world = World::new();
            populate(&mut world, r);
            let mut sync = ShardedSync::create(&run, &registry(), Pretend { rank: r, size: n })
                .expect("create shard");
            let mut tick = || {
                for mut c in world.query::<&mut Reading>().iter_mut(&mut world) {
                    c.step += 1;
                }
                sync.flush(&mut world).expect("commit")
            };
            // Tick 1 persists the entities (rank 0 reads every shard), ticks 2 and 3 change
            // values only (rank 0 rewrites the run file from its description).
            let first = tick();
            tick();
            if r == 0 {
                let second = tick();
                assert!(first.reread && !second.reread);
                let files = std::fs::read_dir(dir.path())
                    .map(|d| d.count())
                    .unwrap_or(0);
                let size = std::fs::metadata(&run).map(|m| m.len()).unwrap_or(0);
                println!(
                    "{n:>5}  {files:>5}  {:>23}  {:>16}  {:>10} KiB",
                    ms(first.run_file),
                    ms(second.run_file),
                    size / 1024
                );
            }
        }
    }
}
