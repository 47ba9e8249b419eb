//! The systems of one tick and the schedule that orders them.
//!
//! ```text
//! build_grid ─▶ integrate ─▶ random_kicks ─┬▶ cloud_stats  ─┐
//! advance_clock ───────────────────────────┴▶ read_probes  ─┴▶ flush (H5PomSet::Flush)
//! ```
//!
//! `advance_clock` runs in parallel with the physics, `cloud_stats` with `read_probes`; the
//! heavy loops use rayon inside. The schedule is built with ambiguity detection as an error:
//! two systems that touch the same data in an unspecified order would make runs
//! non-deterministic, so such a schedule does not start.

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings};
use h5pom::ecs::{H5PomSet, H5Sync};
use rand_chacha::rand_core::Rng;

use super::model::{
    Clock, Cloud, CloudStats, Counters, Params, Particles, Probe, ProbeReading, RngState, Step,
};
use super::physics::{self, Grid};

/// The cell lists, one per cloud in index order, rebuilt every tick (derived data: not
/// persisted).
#[derive(Resource, Default)]
pub(crate) struct CellList(pub(crate) Vec<Grid>);

/// The first error of the flush, kept for the driver (bevy would otherwise hand it to its
/// fallback handler, which panics by default).
#[derive(Resource, Default)]
pub(crate) struct FlushError(pub(crate) Option<h5pom::ecs::EcsError>);

fn clouds_in_order<'a, T>(q: impl Iterator<Item = (&'a Cloud, T)>) -> Vec<T> {
    let mut v: Vec<(u32, T)> = q.map(|(c, t)| (c.index, t)).collect();
    v.sort_unstable_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, t)| t).collect()
}

fn flat(a: &ndarray::Array2<f32>) -> &[f32] {
    a.as_slice().unwrap_or(&[])
}

/// Makes the arrays of `p` contiguous row-major (they are, unless built by hand).
fn contiguous(p: &mut Particles) {
    if !p.positions.is_standard_layout() {
        p.positions = p.positions.as_standard_layout().into_owned();
    }
    if !p.velocities.is_standard_layout() {
        p.velocities = p.velocities.as_standard_layout().into_owned();
    }
}

/// Copies each cloud's particle positions into its cell list (clouds in index order) and
/// computes the forces. Particles interact within their cloud only: clouds pass through each
/// other, so a cloud's future depends on nothing outside it and clouds can be simulated by
/// different processes (MPI runs) with the same result.
fn build_grid(
    params: Res<Params>,
    mut grids: ResMut<CellList>,
    clouds: Query<(&Cloud, &Particles)>,
) {
    let ordered = clouds_in_order(clouds.iter());
    grids.0.resize_with(ordered.len(), Grid::default);
    for (grid, p) in grids.0.iter_mut().zip(&ordered) {
        grid.rebuild(
            params.box_size,
            params.cutoff,
            std::iter::once(flat(&p.positions)),
        );
    }
}

/// Damping and motion of every particle, with the forces of [`build_grid`].
fn integrate(
    params: Res<Params>,
    grid: Res<CellList>,
    mut clouds: Query<(&Cloud, &mut Particles, &mut Counters)>,
) {
    let ordered = clouds_in_order(clouds.iter_mut().map(|(c, p, n)| (c, (c.mass, p, n))));
    for (k, (mass, mut p, mut counters)) in ordered.into_iter().enumerate() {
        let Some(grid) = grid.0.get(k) else {
            continue;
        };
        let Some(offset) = grid.offset(0) else {
            continue;
        };
        contiguous(&mut p);
        let Particles {
            positions,
            velocities,
        } = &mut *p;
        let (Some(pos), Some(vel)) = (positions.as_slice_mut(), velocities.as_slice_mut()) else {
            continue;
        };
        let step = physics::Step {
            stiffness: params.stiffness,
            damping: params.damping,
            dt: params.dt,
            mass,
        };
        counters.wraps += physics::advance(grid, offset, step, pos, vel);
    }
}

/// A uniform float in `[0, 1)` from 24 random bits.
fn uniform(rng: &mut impl Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1 << 24) as f32)
}

/// A standard normal (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f32 {
    let u1 = 1.0 - uniform(rng); // (0, 1]
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// In each cloud, `kicks_per_tick` random particles get a random velocity change (the only
/// randomness after creation; the cloud's generator state is its persisted `RngState`).
fn random_kicks(
    params: Res<Params>,
    mut clouds: Query<(&mut Particles, &mut Counters, &mut RngState)>,
) {
    for (mut p, mut counters, mut rng_state) in &mut clouds {
        let n = p.velocities.nrows();
        if n == 0 || params.kicks_per_tick == 0 {
            continue;
        }
        let mut rng = rng_state.rng();
        for _ in 0..params.kicks_per_tick {
            let k = (rng.next_u64() % n as u64) as usize;
            let dv = [normal(&mut rng), normal(&mut rng), normal(&mut rng)];
            for (axis, d) in dv.iter().enumerate() {
                p.velocities[[k, axis]] += d * params.kick_sigma;
            }
            counters.kicks += 1;
        }
        *rng_state = RngState::capture(&rng);
    }
}

/// Simulated time and the step counter.
fn advance_clock(params: Res<Params>, mut clock: ResMut<Clock>, mut step: ResMut<Step>) {
    clock.time += f64::from(params.dt);
    step.step += 1;
}

/// Kinetic energy and top speed per cloud.
fn cloud_stats(mut clouds: Query<(&Cloud, &Particles, &mut CloudStats)>) {
    for (cloud, p, mut stats) in &mut clouds {
        let (e, vmax) = physics::energy_and_max_speed(flat(&p.velocities));
        *stats = CloudStats {
            kinetic_energy: e * f64::from(cloud.mass),
            max_speed: vmax,
        };
    }
}

/// Every probe measures its parent cloud.
fn read_probes(
    params: Res<Params>,
    step: Res<Step>,
    mut probes: Query<(&Probe, &ChildOf, &mut ProbeReading)>,
    clouds: Query<&Particles>,
) {
    for (probe, parent, mut reading) in &mut probes {
        let Ok(p) = clouds.get(parent.parent()) else {
            continue;
        };
        let (count, speed) = physics::probe(
            params.box_size,
            [probe.x, probe.y, probe.z],
            probe.radius,
            flat(&p.positions),
            flat(&p.velocities),
        );
        *reading = ProbeReading {
            step: step.step,
            count,
            mean_speed: if count == 0 {
                0.0
            } else {
                speed / count as f64
            },
        };
    }
}

/// h5pom's flush, in [`H5PomSet::Flush`]. It does what `h5pom::ecs::flush_system` does (one
/// [`H5Sync::tick`]) but keeps the typed error in [`FlushError`]: `flush_system` returns it to
/// bevy's fallback error handler, which panics by default and cannot hand it back to `main`.
fn flush(world: &mut World) {
    if !world.contains_resource::<H5Sync>() {
        return;
    }
    if let Err(e) = world.resource_scope(|world, mut sync: Mut<H5Sync>| sync.tick(world)) {
        world.resource_mut::<FlushError>().0.get_or_insert(e);
    }
}

/// The schedule of one tick: the simulation, then h5pom's flush.
pub(crate) fn schedule() -> Schedule {
    let mut s = Schedule::default();
    s.set_build_settings(ScheduleBuildSettings {
        ambiguity_detection: LogLevel::Error,
        ..Default::default()
    });
    s.add_systems(
        (
            (build_grid, integrate, random_kicks).chain(),
            advance_clock,
            (cloud_stats, read_probes.after(advance_clock)).after(random_kicks),
        )
            .before(H5PomSet::Flush),
    );
    s.add_systems(flush.in_set(H5PomSet::Flush));
    s
}

/// Builds the schedule's graph now, so that an ambiguous schedule is an error before the run;
/// the error names the systems involved.
pub(crate) fn check(schedule: &mut Schedule, world: &mut World) -> Result<(), String> {
    match schedule.initialize(world) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string(schedule.graph(), world)),
    }
}
