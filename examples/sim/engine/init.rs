//! The initial world: `K` clouds (Gaussian blobs drifting through the periodic box), two
//! probes per cloud, and the resources.

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom::ecs::{Persist, PersistentId};
use ndarray::{Array1, Array2};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::model::{
    Clock, Cloud, CloudStats, Counters, Name, Params, ParticleIds, Particles, Probe, ProbeReading,
    RngState, Step,
};
use super::systems::normal;

/// Mean number density (particles per unit volume): about 4 neighbours within the cutoff.
const DENSITY: f32 = 1.0;
/// Range of the pair force; also the cell size of the cell list.
const CUTOFF: f32 = 1.0;

fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1 << 24) as f32)
}

fn wrap(x: f32, l: f32) -> f32 {
    let w = x - l * (x / l).floor();
    if (0.0..l).contains(&w) { w } else { 0.0 }
}

/// The physical parameters for `particles` particles.
pub(crate) fn params(particles: usize, seed: u64) -> Params {
    Params {
        box_size: (particles as f32 / DENSITY).cbrt().max(3.0 * CUTOFF),
        cutoff: CUTOFF,
        stiffness: 2.0,
        damping: 0.02,
        dt: 0.05,
        kicks_per_tick: 16,
        kick_sigma: 0.5,
        particles: particles as u64,
        seed,
    }
}

/// The persistent ids of cloud `k` and of its two probes: fixed by the model (`3k + 1`,
/// `3k + 2`, `3k + 3`), so that they do not depend on how many processes share the clouds.
fn ids(k: usize) -> [u64; 3] {
    let base = 3 * k as u64;
    [base + 1, base + 2, base + 3]
}

/// Spawns the initial world into `world` (which must hold no simulation yet): the clouds `k`
/// for which `mine(k)` is true (all of them in one process), with their probes, and the
/// resources. Each cloud draws from its own generator (the seed, stream `k + 1`), so a cloud
/// is the same whichever process creates it.
pub(crate) fn populate(
    world: &mut World,
    particles: usize,
    clouds: usize,
    seed: u64,
    mine: impl Fn(usize) -> bool,
) {
    let params = params(particles, seed);
    let l = params.box_size;
    let size = |k: usize| particles / clouds + usize::from(k < particles % clouds);
    for k in (0..clouds).filter(|&k| mine(k)) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(k as u64 + 1);
        let n = size(k);
        let first_id: u64 = (0..k).map(|j| size(j) as u64).sum();
        let centre = [
            uniform(&mut rng) * l,
            uniform(&mut rng) * l,
            uniform(&mut rng) * l,
        ];
        let drift = [
            0.5 * normal(&mut rng),
            0.5 * normal(&mut rng),
            0.5 * normal(&mut rng),
        ];
        let sigma = l / 6.0;
        let mut pos = Array2::<f32>::zeros((n, 3));
        let mut vel = Array2::<f32>::zeros((n, 3));
        for i in 0..n {
            for a in 0..3 {
                pos[[i, a]] = wrap(centre[a] + sigma * normal(&mut rng), l);
                vel[[i, a]] = drift[a] + 0.2 * normal(&mut rng);
            }
        }
        let particle_ids = Array1::from_iter(first_id..first_id + n as u64);
        let [cloud_id, probe_ids @ ..] = ids(k);
        let cloud = world
            .spawn((
                Persist,
                PersistentId(cloud_id),
                Cloud {
                    index: k as u32,
                    mass: 1.0 + 0.5 * k as f32,
                },
                Particles {
                    positions: pos,
                    velocities: vel,
                },
                ParticleIds { ids: particle_ids },
                Name {
                    name: format!("cloud-{k}"),
                },
                Counters::default(),
                CloudStats::default(),
            ))
            .id();
        let random_centre = [
            uniform(&mut rng) * l,
            uniform(&mut rng) * l,
            uniform(&mut rng) * l,
        ];
        for (j, (c, radius)) in [(centre, sigma / 2.0), (random_centre, l / 8.0)]
            .into_iter()
            .enumerate()
        {
            world.spawn((
                Persist,
                PersistentId(probe_ids[j]),
                Probe {
                    x: c[0],
                    y: c[1],
                    z: c[2],
                    radius,
                },
                ProbeReading::default(),
                Name {
                    name: format!("cloud-{k}-probe-{j}"),
                },
                ChildOf(cloud),
            ));
        }
        world.entity_mut(cloud).insert(RngState::capture(&rng));
    }
    world.insert_resource(params);
    world.insert_resource(Clock::default());
    world.insert_resource(Step::default());
}
