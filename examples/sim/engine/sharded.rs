//! The run of a sharded simulation: each process (an MPI rank, or the one process of a
//! resumed sharded run) simulates and persists its share of the clouds, and every flush is a
//! commit across processes ([`ShardedSync`]). Clouds do not interact, so a cloud's state
//! never depends on where it is simulated; the checksum adds the processes' parts, so the last
//! line equals that of the same command run as one process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use h5pom::ecs::{Collective, ShardedSync, slot_paths};

use super::checksum::{checksum_parts, combine};
use super::driver::{
    Config, FlushSample, Observer, Outcome, Started, TickReport, ack, cloud_indices, history,
    io_err, require_simulation, same_file, summarize, total_size,
};
use super::io_options::{apply_io_options, apply_threads};
use super::model::{Clock, Cloud, Params, Step, schema};
use super::systems::{self, CellList, FlushError};
use super::{SimError, init};

/// True if `path` is the run file of a sharded run.
pub(crate) fn is_sharded(path: &Path) -> bool {
    h5pom::ecs::sharded::is_sharded(path)
}

/// Runs this process's share of the simulation per `cfg`.
pub(crate) fn run_sharded<C: Collective>(
    cfg: &Config,
    obs: &mut dyn Observer,
    comm: C,
) -> Result<Outcome, SimError> {
    let unsupported = [
        (cfg.background, "--background"),
        (cfg.at_step.is_some(), "--at-step"),
    ];
    if let Some((_, flag)) = unsupported.iter().find(|(on, _)| *on) {
        return Err(SimError::Unsupported(format!(
            "{flag} is not supported by sharded (MPI) runs yet"
        )));
    }
    apply_threads(&cfg.io)?;
    let schema = schema();
    let registry = schema.registry().clone();
    let mut world = World::new();
    world.init_resource::<CellList>();
    world.init_resource::<FlushError>();
    let (rank, size) = (comm.rank(), comm.size());
    let (mut sync, resumed) = match &cfg.resume {
        None => {
            if cfg.clouds == 0 || cfg.particles < cfg.clouds {
                return Err(SimError::Sizes {
                    particles: cfg.particles,
                    clouds: cfg.clouds,
                });
            }
            // Cloud k on rank k % size: the rule a reload deals hierarchy roots by (clouds in
            // id order), so a resume on as many ranks keeps every cloud where it was.
            init::populate(&mut world, cfg.particles, cfg.clouds, cfg.seed, |k| {
                k % size == rank
            });
            (ShardedSync::create(&cfg.out, &registry, comm)?, None)
        }
        Some(from) => {
            let (sync, _) = ShardedSync::resume_from(&mut world, from, &cfg.out, &registry, comm)?;
            require_simulation(&world, from)?;
            (sync, Some((from.clone(), same_file(from, &cfg.out))))
        }
    };
    let applied = apply_io_options(&cfg.io, sync.shard_sync())?;
    if cfg.history {
        // Each rank's history holds its own clouds; the run file links them all.
        sync.keep_history(history(cloud_indices(&mut world)))?;
        sync.shard_sync().set_share_encoded(cfg.share_encoded);
    }
    let mut schedule = systems::schedule();
    systems::check(&mut schedule, &mut world).map_err(SimError::Schedule)?;
    let started = Started {
        start_step: world.resource::<Step>().step,
        ticks: cfg.ticks,
        particles: world.resource::<Params>().particles,
        clouds: world.query::<&Cloud>().iter(&world).count(),
        resumed,
        applied,
    };
    obs.started(&started);
    let mut out_files: Vec<PathBuf> = slot_paths(&cfg.out).into();
    out_files.extend(slot_paths(sync.shard_sync().path()));
    let every = u64::from(cfg.flush_every.max(1));
    let (mut tick_times, mut samples, mut snapshots) = (Vec::new(), Vec::new(), Vec::new());
    let mut snapshot_time = Duration::ZERO;
    if cfg.snapshot_every.is_some() {
        std::fs::create_dir_all(&cfg.snapshot_dir)
            .map_err(io_err("create directory", &cfg.snapshot_dir))?;
    }
    let mut flushed_at = None;
    for k in 1..=cfg.ticks {
        let t0 = Instant::now();
        schedule.run(&mut world);
        let step = world.resource::<Step>().step;
        let flush = if k % every == 0 || k == cfg.ticks {
            let f = sync.flush(&mut world)?;
            flushed_at = Some(step);
            if cfg.log_flushes && rank == 0 {
                ack(step, f.tick);
            }
            Some(sample(&f))
        } else {
            None
        };
        world.clear_trackers();
        let duration = t0.elapsed();
        let mut snapshot = None;
        if cfg
            .snapshot_every
            .is_some_and(|n| n > 0 && step.is_multiple_of(n))
        {
            // A sharded snapshot: each rank's share, and rank 0's file over them.
            let path = cfg.snapshot_dir.join(format!("sim-{step:08}.h5"));
            let t = Instant::now();
            sync.snapshot(&mut world, &path)?;
            snapshot_time += t.elapsed();
            snapshots.push(path.clone());
            snapshot = Some(path);
        }
        tick_times.push(duration);
        samples.extend(flush);
        obs.tick(&TickReport {
            step,
            duration,
            flush,
            snapshot,
        });
    }
    // A run of no ticks still commits its world (the run file appears with the first commit).
    if flushed_at.is_none() {
        let f = sync.flush(&mut world)?;
        samples.push(sample(&f));
    }
    let mut parts = checksum_parts(&mut world, &schema);
    sync.comm().all_sum(&mut parts.counts);
    let checksum = combine(&parts);
    let clouds = summarize(&mut world);
    let (end_step, time) = (
        world.resource::<Step>().step,
        world.resource::<Clock>().time,
    );
    drop(sync);
    Ok(Outcome {
        started,
        end_step,
        time,
        tick_times,
        flushes: samples,
        snapshots,
        snapshot_time,
        out_bytes_before: 0,
        out_bytes_after: total_size(&out_files)?,
        out_files,
        clouds,
        checksum,
        rank,
        ranks: size,
    })
}

fn sample(f: &h5pom::ecs::ShardedFlush) -> FlushSample {
    let mut s = FlushSample::of(f.local);
    s.duration += f.commit;
    s.commit = f.commit;
    s.run_file = f.run_file;
    s.slowest = f.slowest;
    s
}

/// Runs this rank's share of an MPI job. A job of one rank (no `mpirun`) is an ordinary run,
/// unless it resumes a sharded run.
#[cfg(feature = "mpi")]
pub(crate) fn run_mpi(cfg: &Config, obs: &mut dyn Observer) -> Result<Outcome, SimError> {
    let universe = h5pom::mpi::init()
        .ok_or_else(|| SimError::Unsupported("MPI was initialized already".into()))?;
    let comm = h5pom::mpi::MpiComm::world(&universe);
    if h5pom::ecs::Collective::size(&comm) == 1 && !cfg.resume.as_deref().is_some_and(is_sharded) {
        return super::driver::run(cfg, obs);
    }
    let mut quiet = ();
    let obs: &mut dyn Observer = if h5pom::ecs::Collective::rank(&comm) == 0 {
        obs
    } else {
        &mut quiet
    };
    run_sharded(cfg, obs, comm)
}
