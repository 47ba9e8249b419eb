//! The run: set up (fresh, from a snapshot, or continuing an output file), tick, flush,
//! snapshot, and measure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use h5pom::ecs::{Durability, FlushPolicy, H5Sync, H5md, History, ParticleGroup};

use super::checksum::world_checksum;
use super::io_options::{AppliedIo, IoOptions, apply_io_options, apply_threads};
use super::model::{Clock, Cloud, CloudStats, Params, Particles, Step, schema};
use super::runlog::RunLogRows;
use super::systems::{self, CellList, FlushError};
use super::{SimError, init};

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Total particles of a new world.
    pub(crate) particles: usize,
    /// Clouds of a new world.
    pub(crate) clouds: usize,
    /// Seed of a new world.
    pub(crate) seed: u64,
    /// Ticks to run (from the resumed step, when resuming).
    pub(crate) ticks: u64,
    /// The output file.
    pub(crate) out: PathBuf,
    /// Compression and threads.
    pub(crate) io: IoOptions,
    /// Flush every this many ticks (≥ 1); the last tick is always flushed.
    pub(crate) flush_every: u32,
    /// Snapshot every this many steps, into `snapshot_dir`.
    pub(crate) snapshot_every: Option<u64>,
    /// Where snapshots go.
    pub(crate) snapshot_dir: PathBuf,
    /// A snapshot or an earlier output file to continue from.
    pub(crate) resume: Option<PathBuf>,
    /// How much of --out survives a crash.
    pub(crate) durability: Durability,
    /// Print `flushed step=<step> tick=<tick>` on stdout after each flush returned Ok.
    pub(crate) log_flushes: bool,
    /// Keep the history of every flush (H5MD view included).
    pub(crate) history: bool,
    /// With `history`: encode each array once for the history and the run file.
    pub(crate) share_encoded: bool,
    /// Background flushes: arrays are encoded and written while the next tick runs.
    pub(crate) background: bool,
    /// With `resume`: the stored step to continue from.
    pub(crate) at_step: Option<u64>,
}

/// One flush: wall time and array data written.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FlushSample {
    pub(crate) duration: Duration,
    /// Bytes of array data the flush wrote, before compression.
    pub(crate) bytes: u64,
    /// The same after compression.
    pub(crate) stored: u64,
    /// `--background`: time copying the arrays out for the writer thread (in `duration`).
    pub(crate) copy: Duration,
    /// `--background`: from the start of the flush to its commit (the writer's time included).
    pub(crate) committed_after: Duration,
    /// Sharded runs: the commit across ranks after this rank's own flush (in `duration`).
    pub(crate) commit: Duration,
    /// Sharded runs, rank 0: writing the run file (in `commit`).
    pub(crate) run_file: Duration,
    /// Sharded runs: the slowest rank's own flush.
    pub(crate) slowest: Duration,
}

impl FlushSample {
    pub(crate) fn of(stats: h5pom::ecs::FlushStats) -> Self {
        FlushSample {
            duration: stats.duration,
            bytes: stats.array_bytes as u64,
            stored: stats.arrays_stored,
            copy: stats.copy,
            committed_after: stats.committed_after,
            ..Default::default()
        }
    }
}

/// Known before the first tick.
#[derive(Clone, Debug)]
pub(crate) struct Started {
    pub(crate) start_step: u64,
    pub(crate) ticks: u64,
    pub(crate) particles: u64,
    pub(crate) clouds: usize,
    /// The file resumed from, and whether the output continues it in place.
    pub(crate) resumed: Option<(PathBuf, bool)>,
    pub(crate) applied: AppliedIo,
}

/// One completed tick.
#[derive(Clone, Debug)]
pub(crate) struct TickReport {
    pub(crate) step: u64,
    pub(crate) duration: Duration,
    pub(crate) flush: Option<FlushSample>,
    pub(crate) snapshot: Option<PathBuf>,
}

/// Gets told about the run as it goes (the progress bar; nothing in the tests).
pub(crate) trait Observer {
    fn started(&mut self, _s: &Started) {}
    fn tick(&mut self, _t: &TickReport) {}
}

impl Observer for () {}

/// One cloud as the final world holds it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CloudSummary {
    pub(crate) index: u32,
    pub(crate) particles: usize,
    pub(crate) kinetic_energy: f64,
    /// First particle's position and velocity (exact bits matter: compared with h5py).
    pub(crate) first: [f32; 6],
}

/// What the run did.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub(crate) started: Started,
    pub(crate) end_step: u64,
    pub(crate) time: f64,
    pub(crate) tick_times: Vec<Duration>,
    /// Every flush that wrote, the final one included.
    pub(crate) flushes: Vec<FlushSample>,
    pub(crate) snapshots: Vec<PathBuf>,
    pub(crate) snapshot_time: Duration,
    /// The files that hold `--out` on disk (both slots of a crash-safe pair, or the one file).
    pub(crate) out_files: Vec<PathBuf>,
    /// Their total size before the first tick and after the run.
    pub(crate) out_bytes_before: u64,
    pub(crate) out_bytes_after: u64,
    pub(crate) clouds: Vec<CloudSummary>,
    pub(crate) checksum: String,
    /// The MPI rank that ran this (0 for a run of one process); only rank 0 reports.
    pub(crate) rank: usize,
    /// Processes that ran it (1 for an ordinary run).
    pub(crate) ranks: usize,
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SimError {
    let path = path.to_path_buf();
    move |source| SimError::Io { op, path, source }
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The files that hold `out` on disk: both slots of a crash-safe pair (`out` is a link to one
/// of them), or `out` itself when written in place.
fn out_files(out: &Path, durability: Durability) -> Vec<PathBuf> {
    if durability == Durability::Unprotected {
        vec![out.to_path_buf()]
    } else {
        h5pom::ecs::slot_paths(out).into()
    }
}

/// The total size of `files`.
pub(crate) fn total_size(files: &[PathBuf]) -> Result<u64, SimError> {
    files
        .iter()
        .map(|p| Ok(std::fs::metadata(p).map_err(io_err("stat", p))?.len()))
        .sum()
}

/// Sets up the world and its sync per `cfg.resume`.
fn open(cfg: &Config, world: &mut World) -> Result<(H5Sync, Option<(PathBuf, bool)>), SimError> {
    let registry = schema().registry().clone();
    let Some(from) = &cfg.resume else {
        if cfg.clouds == 0 || cfg.particles < cfg.clouds {
            return Err(SimError::Sizes {
                particles: cfg.particles,
                clouds: cfg.clouds,
            });
        }
        init::populate(world, cfg.particles, cfg.clouds, cfg.seed, |_| true);
        return Ok((
            H5Sync::create_with(&cfg.out, &registry, cfg.durability)?,
            None,
        ));
    };
    let in_place = same_file(from, &cfg.out);
    let sync = match cfg.at_step {
        Some(step) if in_place => {
            // In place: the history after the step is cut off and the run goes on from it.
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            H5Sync::rewind_with(world, &cfg.out, &registry, cfg.durability, step)?.0
        }
        Some(step) => {
            registry.load_at(world, from, i64::try_from(step).unwrap_or(i64::MAX))?;
            H5Sync::create_with(&cfg.out, &registry, cfg.durability)?
        }
        None if in_place => H5Sync::resume_with(world, &cfg.out, &registry, cfg.durability)?.0,
        None => {
            registry.load(world, from)?;
            H5Sync::create_with(&cfg.out, &registry, cfg.durability)?
        }
    };
    require_simulation(world, from)?;
    Ok((sync, Some((from.clone(), in_place))))
}

/// Refuses a world loaded from `from` that lacks the simulation's resources.
pub(crate) fn require_simulation(world: &World, from: &Path) -> Result<(), SimError> {
    let missing = [
        ("Params", world.contains_resource::<Params>()),
        ("Step", world.contains_resource::<Step>()),
        ("Clock", world.contains_resource::<Clock>()),
    ];
    match missing.into_iter().find(|(_, present)| !present) {
        Some((name, _)) => Err(SimError::NotASimulation {
            path: from.to_path_buf(),
            missing: name,
        }),
        None => Ok(()),
    }
}

/// The indices of the clouds in `world`, ascending (the history's particle groups).
pub(crate) fn cloud_indices(world: &mut World) -> Vec<u32> {
    let mut v: Vec<u32> = world
        .query::<&Cloud>()
        .iter(world)
        .map(|c| c.index)
        .collect();
    v.sort_unstable();
    v
}

/// The history the sim keeps with `--history`: steps and times from `Step` and `Clock`, and an
/// H5MD view with one particle group per cloud of `clouds` (`cloud<index>`: positions,
/// velocities, the periodic box) and the clouds' kinetic energies as an observable.
pub(crate) fn history(clouds: impl IntoIterator<Item = u32>) -> History {
    let mut h5md = H5md::new("h5pom sim").observable(
        "kinetic_energy",
        <CloudStats as h5pom::Object>::TYPE_TAG,
        "kinetic_energy",
    );
    for index in clouds {
        let cloud = move |w: &World| {
            let mut q = w.try_query::<(Entity, &Cloud)>()?;
            q.iter(w).find(|(_, c)| c.index == index).map(|(e, _)| e)
        };
        h5md = h5md.particles(
            ParticleGroup::new(
                format!("cloud{index}"),
                <Particles as h5pom::Object>::TYPE_TAG,
                cloud,
            )
            .element("position", "positions")
            .element("velocity", "velocities")
            .periodic_box(|w| {
                let side = f64::from(w.get_resource::<Params>()?.box_size);
                Some(vec![side; 3])
            }),
        );
    }
    History::new()
        .step_time(|w| {
            let step = w.get_resource::<Step>().map_or(0, |s| s.step);
            let time = w.get_resource::<Clock>().map_or(f64::NAN, |c| c.time);
            (i64::try_from(step).unwrap_or(i64::MAX), time)
        })
        .h5md(h5md)
}

/// The acknowledgement of a flush that returned Ok, for harnesses that kill the run.
pub(crate) fn ack(step: u64, tick: u64) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "flushed step={step} tick={tick}");
    let _ = out.flush();
}

/// Acknowledges committed ticks with their steps: at once for a flush written in the tick; for
/// a background flush, when a later flush (or the final wait) committed it.
#[derive(Default)]
struct Acks {
    /// Ticks handed to the writer thread, with their steps, not yet committed.
    waiting: std::collections::VecDeque<(u64, u64)>,
    /// The last tick acknowledged.
    done: u64,
}

impl Acks {
    fn tick(&mut self, world: &World, step: u64) {
        let sync = world.resource::<H5Sync>();
        let committed = sync.flushes();
        while let Some(&(tick, s)) = self.waiting.front() {
            if tick > committed {
                break;
            }
            self.waiting.pop_front();
            ack(s, tick);
            self.done = tick;
        }
        match sync.in_flight() {
            Some(tick) if self.waiting.back().is_none_or(|w| w.0 < tick) => {
                self.waiting.push_back((tick, step));
            }
            None if committed > self.done => {
                ack(step, committed);
                self.done = committed;
            }
            _ => {}
        }
    }
}

fn flushes(world: &World) -> u64 {
    world.resource::<H5Sync>().flushes()
}

fn take_flush_error(world: &mut World) -> Result<(), SimError> {
    match world.resource_mut::<FlushError>().0.take() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

pub(crate) fn summarize(world: &mut World) -> Vec<CloudSummary> {
    let mut v: Vec<CloudSummary> = world
        .query::<(&Cloud, &Particles, &CloudStats)>()
        .iter(world)
        .map(|(c, p, s)| {
            let row = |a: &ndarray::Array2<f32>| [a[[0, 0]], a[[0, 1]], a[[0, 2]]];
            let (x, v) = (row(&p.positions), row(&p.velocities));
            CloudSummary {
                index: c.index,
                particles: p.positions.nrows(),
                kinetic_energy: s.kinetic_energy,
                first: [x[0], x[1], x[2], v[0], v[1], v[2]],
            }
        })
        .collect();
    v.sort_by_key(|c| c.index);
    v
}

/// Runs the simulation per `cfg`, telling `obs` about each tick.
pub(crate) fn run(cfg: &Config, obs: &mut dyn Observer) -> Result<Outcome, SimError> {
    apply_threads(&cfg.io)?;
    let schema = schema();
    let mut world = World::new();
    world.init_resource::<CellList>();
    world.init_resource::<FlushError>();
    let (mut sync, resumed) = open(cfg, &mut world)?;
    if cfg.history {
        sync.keep_history(schema.registry(), history(cloud_indices(&mut world)))?;
        sync.set_share_encoded(cfg.share_encoded);
    }
    sync.set_policy(match cfg.flush_every {
        0 | 1 => FlushPolicy::EveryTick,
        n => FlushPolicy::Every(n),
    });
    let applied = apply_io_options(&cfg.io, &mut sync)?;
    sync.set_background(cfg.background)?;
    world.insert_resource(sync);
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
    let out_files = out_files(&cfg.out, cfg.durability);
    let out_bytes_before = total_size(&out_files)?;
    let mut rows = RunLogRows::default();
    let (mut tick_times, mut samples, mut snapshots) = (Vec::new(), Vec::new(), Vec::new());
    let mut snapshot_time = Duration::ZERO;
    if cfg.snapshot_every.is_some() {
        std::fs::create_dir_all(&cfg.snapshot_dir)
            .map_err(io_err("create directory", &cfg.snapshot_dir))?;
    }
    let mut acks = Acks::default();
    for _ in 0..cfg.ticks {
        let before = flushes(&world);
        let t0 = Instant::now();
        schedule.run(&mut world);
        world.clear_trackers();
        let duration = t0.elapsed();
        take_flush_error(&mut world)?;
        let flush = (flushes(&world) > before)
            .then(|| FlushSample::of(world.resource::<H5Sync>().last_flush()));
        let step = world.resource::<Step>().step;
        if cfg.log_flushes {
            acks.tick(&world, step);
        }
        let mut snapshot = None;
        if cfg
            .snapshot_every
            .is_some_and(|n| n > 0 && step.is_multiple_of(n))
        {
            let path = cfg.snapshot_dir.join(format!("sim-{step:08}.h5"));
            let t = Instant::now();
            schema.registry().snapshot(&mut world, &path)?;
            snapshot_time += t.elapsed();
            snapshots.push(path.clone());
            snapshot = Some(path);
        }
        tick_times.push(duration);
        samples.extend(flush);
        rows.push(step, duration.as_secs_f64(), flush.unwrap_or_default());
        obs.tick(&TickReport {
            step,
            duration,
            flush,
            snapshot,
        });
    }
    // The file must hold the final state whatever --flush-every says.
    let before = flushes(&world);
    let stats = world.resource_scope(|w, mut s: Mut<H5Sync>| {
        let stats = s.flush_now(w)?;
        // A background flush commits when its writer is done.
        Ok::<_, h5pom::ecs::EcsError>(s.wait()?.unwrap_or(stats))
    })?;
    if flushes(&world) > before {
        let f = FlushSample::of(stats);
        samples.push(f);
        let step = world.resource::<Step>().step;
        rows.push(step, 0.0, f);
        if cfg.log_flushes {
            acks.tick(&world, step);
        }
    }
    world.resource_scope(|w, mut s: Mut<H5Sync>| rows.save(w, &mut s))?;
    let checksum = world_checksum(&mut world, &schema);
    let clouds = summarize(&mut world);
    let (end_step, time) = (
        world.resource::<Step>().step,
        world.resource::<Clock>().time,
    );
    drop(world.remove_resource::<H5Sync>()); // closes the file
    Ok(Outcome {
        started,
        end_step,
        time,
        tick_times,
        flushes: samples,
        snapshots,
        snapshot_time,
        out_bytes_before,
        out_bytes_after: total_size(&out_files)?,
        out_files,
        clouds,
        checksum,
        rank: 0,
        ranks: 1,
    })
}
