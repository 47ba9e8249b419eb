//! ECS bridge measurements (issue: idle tick, 10k changed scalars, 1M-entity snapshot/reload).
//!
//! `cargo bench --bench ecs` prints timings and rates; `H5POM_BENCH_N=...` scales the big case
//! (and the entity count of the `H5POM_BENCH_PROFILE=groups|reload` single cases).

use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use h5pom::ecs::{Durability, H5Sync, Persist, Registry};

#[derive(Component, h5pom::Object, Clone, Copy)]
struct Position {
    x: f64,
    y: f64,
}

#[derive(Component, h5pom::Object, Clone, Copy)]
struct Health {
    hp: f32,
    level: u32,
}

#[derive(Component, h5pom::Object, Clone, Copy)]
struct Flags {
    alive: bool,
    team: i64,
}

fn spawn(world: &mut World, n: usize) {
    world.spawn_batch((0..n).map(|i| {
        (
            Persist,
            Position {
                x: i as f64,
                y: -(i as f64),
            },
            Health {
                hp: 100.0,
                level: (i % 50) as u32,
            },
            Flags {
                alive: true,
                team: (i % 4) as i64,
            },
        )
    }));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn flush(world: &mut World) -> h5pom::ecs::FlushStats {
    let s = world
        .resource_scope(|w, mut s: Mut<H5Sync>| s.flush_now(w))
        .expect("flush");
    world.clear_trackers();
    s
}

fn tables() -> Registry {
    Registry::new()
        .table::<Position>()
        .table::<Health>()
        .table::<Flags>()
}

fn groups() -> Registry {
    Registry::new()
        .component::<Position>()
        .component::<Health>()
        .component::<Flags>()
}

fn idle_and_changed(
    label: &str,
    registry: &Registry,
    n: usize,
    changed: usize,
    durability: Durability,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut world = World::new();
    let sync = H5Sync::create_with(dir.path().join("b.h5"), registry, durability).unwrap();
    world.insert_resource(sync);
    spawn(&mut world, n);
    let t = Instant::now();
    flush(&mut world);
    let first = t.elapsed();
    if durability != Durability::Unprotected {
        // The second slot of the pair catches up with the first.
        flush(&mut world);
    }
    let mut idle = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let s = flush(&mut world);
        idle.push(t.elapsed());
        assert!(!s.wrote);
    }
    // `H5POM_BENCH_ROUNDS`: more busy flushes (for profiling the change path).
    let rounds = std::env::var("H5POM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut busy = Vec::new();
    for round in 0..rounds {
        let mut q = world.query::<&mut Health>();
        for (i, mut h) in q.iter_mut(&mut world).enumerate() {
            if i < changed {
                h.hp -= 1.0 + round as f32;
            }
        }
        let t = Instant::now();
        let s = flush(&mut world);
        busy.push(t.elapsed());
        assert!(s.wrote);
    }
    println!(
        "{label:<6} {:<11} {n:>8} entities: first flush {:>9.1?}  idle tick {:>9.1?}  {changed} changed Health: {:>9.1?}",
        format!("{durability:?}"),
        first,
        median(idle),
        median(busy)
    );
}

/// One changed row of a big table: the flush writes one chunk of each changed column
/// (Health has two: `hp` changes, `level` does not), not the table.
fn one_changed_row(n: usize, durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let mut world = World::new();
    let sync = H5Sync::create_with(dir.path().join("b.h5"), &tables(), durability).unwrap();
    world.insert_resource(sync);
    spawn(&mut world, n);
    flush(&mut world);
    if durability != Durability::Unprotected {
        flush(&mut world);
    }
    let mut times = Vec::new();
    let mut chunks = 0;
    for round in 0..9 {
        let mut q = world.query::<&mut Health>();
        if let Some(mut h) = q.iter_mut(&mut world).nth(n / 2) {
            h.hp -= 1.0 + round as f32;
        }
        let t = Instant::now();
        let s = flush(&mut world);
        times.push(t.elapsed());
        chunks = s.table_chunks;
    }
    println!(
        "tables {:<11} {n:>8} entities: 1 changed Health row: {:>9.1?}, {chunks} table chunk(s) written of {} per column",
        format!("{durability:?}"),
        median(times),
        n.div_ceil(h5pom::table::chunk_rows(n, 0)),
    );
}

fn snapshot_reload(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.h5");
    let mut world = World::new();
    spawn(&mut world, n);
    let t = Instant::now();
    tables().snapshot(&mut world, &path).unwrap();
    let snap = t.elapsed();
    let mut again = World::new();
    let t = Instant::now();
    let report = tables().load(&mut again, &path).unwrap();
    let load = t.elapsed();
    assert_eq!(report.entities, n);
    let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    println!(
        "tables {n:>8} entities x 3 components: snapshot {:>8.1?} ({:>5.2} M entities/s), reload {:>8.1?} ({:>5.2} M entities/s), file {mb:.1} MB",
        snap,
        n as f64 / snap.as_secs_f64() / 1e6,
        load,
        n as f64 / load.as_secs_f64() / 1e6
    );
}

/// Where a table flush spends its time: building rows vs writing columns.
fn profile_rows(n: usize) {
    let mut world = World::new();
    spawn(&mut world, n);
    let mut q = world.query::<&Health>();
    let t = Instant::now();
    let mut row = h5pom::Row::default();
    for h in q.iter(&world) {
        h5pom::write_row(h, &mut row, None).unwrap();
    }
    println!(
        "  write_row x {n}: {:?} ({} values)",
        t.elapsed(),
        row.values.len()
    );
}

fn main() {
    let n_env = |default: usize| {
        std::env::var("H5POM_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    if let Some(what) = std::env::var_os("H5POM_BENCH_PROFILE") {
        if what == "groups" {
            let n = n_env(1_000);
            idle_and_changed("groups", &groups(), n, n.min(10_000), Durability::Process);
        } else if what == "reload" {
            snapshot_reload(n_env(100_000));
        } else if what == "onerow" {
            for d in [Durability::Unprotected, Durability::Process] {
                one_changed_row(1_000_000, d);
            }
        } else if what == "tables" {
            idle_and_changed("tables", &tables(), 100_000, 10_000, Durability::Process);
        } else {
            profile_rows(100_000);
        }
        return;
    }
    // `cargo test --benches` runs bench targets with --bench absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let big = n_env(1_000_000);
    if quick {
        for d in [
            Durability::Unprotected,
            Durability::Process,
            Durability::Power,
        ] {
            idle_and_changed("tables", &tables(), 1_000, 100, d);
        }
        one_changed_row(20_000, Durability::Process);
        snapshot_reload(1_000);
        return;
    }
    println!("h5pom-ecs benchmarks (release; medians)");
    for d in [
        Durability::Unprotected,
        Durability::Process,
        Durability::Power,
    ] {
        idle_and_changed("tables", &tables(), 100_000, 10_000, d);
    }
    one_changed_row(big, Durability::Unprotected);
    one_changed_row(big, Durability::Process);
    idle_and_changed("groups", &groups(), 10_000, 10_000, Durability::Process);
    idle_and_changed("groups", &groups(), 100_000, 10_000, Durability::Process);
    snapshot_reload(big);
}
