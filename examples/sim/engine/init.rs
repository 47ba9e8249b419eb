//! The initial world: `K` clouds (Gaussian blobs drifting through the periodic box), two
//! probes per cloud, and the resources.

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom::ecs::Persist;
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
        kicks_per_tick: 64,
        kick_sigma: 0.5,
        particles: particles as u64,
        seed,
    }
}

/// Spawns the initial world into `world` (which must hold no simulation yet).
pub(crate) fn populate(world: &mut World, particles: usize, clouds: usize, seed: u64) {
    let params = params(particles, seed);
    let l = params.box_size;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut first_id = 0u64;
    for k in 0..clouds {
        let n = particles / clouds + usize::from(k < particles % clouds);
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
        let ids = Array1::from_iter(first_id..first_id + n as u64);
        first_id += n as u64;
        let cloud = world
            .spawn((
                Persist,
                Cloud {
                    index: k as u32,
                    mass: 1.0 + 0.5 * k as f32,
                },
                Particles {
                    positions: pos,
                    velocities: vel,
                },
                ParticleIds { ids },
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
    }
    world.insert_resource(params);
    world.insert_resource(Clock::default());
    world.insert_resource(Step::default());
    world.insert_resource(RngState::capture(&rng));
}
