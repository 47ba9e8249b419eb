//! What the simulation persists: components, resources, and the one list that registers them
//! with h5pom and with the checksum together (so that no persisted type can escape the hash).

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom::Object;
use h5pom::ecs::{PersistentId, Registry};
use ndarray::{Array1, Array2};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng as _;

use super::checksum::{Digest, Hasher};

// ---------------------------------------------------------------------------------------------
// Cloud entities: a few, each with large arrays (group storage: datasets per entity).

/// Positions and velocities of one cloud's particles, `n × 3` each. Rewritten every flush.
#[derive(Component, Object, Clone, Debug, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Particles {
    /// Positions in `[0, box_size)³`.
    pub(crate) positions: Array2<f32>,
    /// Velocities.
    pub(crate) velocities: Array2<f32>,
}

/// The global ids of one cloud's particles. Never changes, so it is written once into each file
/// the world is synced to (each slot of a crash-safe pair, so twice in all; each snapshot): a
/// flush writes only the components changed since that file's last flush.
#[derive(Component, Object, Clone, Debug, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct ParticleIds {
    /// One id per row of [`Particles`].
    pub(crate) ids: Array1<u64>,
}

/// What a cloud is (scalar fields, group storage next to its arrays).
#[derive(Component, Object, Clone, Debug, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Cloud {
    /// Position of the cloud in the creation order: the canonical order of clouds.
    pub(crate) index: u32,
    /// Mass of each of its particles.
    pub(crate) mass: f32,
}

// ---------------------------------------------------------------------------------------------
// Small components in column tables (many instances, scalar fields).

/// A display name (clouds and probes).
#[derive(Component, Object, Clone, Debug, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Name {
    /// The name.
    pub(crate) name: String,
}

/// Per-cloud counters.
#[derive(Component, Object, Clone, Debug, Default, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Counters {
    /// Random kicks received.
    pub(crate) kicks: u64,
    /// Times a particle crossed the periodic boundary.
    pub(crate) wraps: u64,
}

/// Per-cloud observables, recomputed every tick.
#[derive(Component, Object, Clone, Debug, Default, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct CloudStats {
    /// Total kinetic energy.
    pub(crate) kinetic_energy: f64,
    /// Largest particle speed.
    pub(crate) max_speed: f32,
}

/// A spherical probe measuring its parent cloud (`ChildOf`) in a region.
#[derive(Component, Object, Clone, Debug, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Probe {
    /// Centre, x.
    pub(crate) x: f32,
    /// Centre, y.
    pub(crate) y: f32,
    /// Centre, z.
    pub(crate) z: f32,
    /// Radius (distances are periodic).
    pub(crate) radius: f32,
}

/// The last measurement of a probe.
#[derive(Component, Object, Clone, Debug, Default, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct ProbeReading {
    /// The step the reading was taken at.
    pub(crate) step: u64,
    /// Particles of the parent cloud inside the sphere.
    pub(crate) count: u64,
    /// Their mean speed (0 when empty).
    pub(crate) mean_speed: f64,
}

// ---------------------------------------------------------------------------------------------
// Resources.

/// Physical parameters: fixed at creation, persisted so that a resumed run uses the same physics.
#[derive(Resource, Object, Clone, Debug, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Params {
    /// Side of the periodic cube.
    pub(crate) box_size: f32,
    /// Range of the pair force.
    pub(crate) cutoff: f32,
    /// Strength of the soft repulsion at zero distance.
    pub(crate) stiffness: f32,
    /// Velocity damping per unit time.
    pub(crate) damping: f32,
    /// Time step.
    pub(crate) dt: f32,
    /// Random velocity kicks per cloud and tick.
    pub(crate) kicks_per_tick: u32,
    /// Standard deviation of a kick's velocity change, per axis.
    pub(crate) kick_sigma: f32,
    /// Total number of particles.
    pub(crate) particles: u64,
    /// The seed the world was created from.
    pub(crate) seed: u64,
}

/// Simulated time.
#[derive(Resource, Object, Clone, Debug, Default, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Clock {
    /// Time since the start.
    pub(crate) time: f64,
}

/// Completed ticks since the world was created.
#[derive(Resource, Object, Clone, Debug, Default, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct Step {
    /// The number of completed ticks.
    pub(crate) step: u64,
}

/// The state of a cloud's ChaCha8 generator (its random kicks): seed, stream and position,
/// enough to continue the exact sequence after a reload. One per cloud, so that a cloud's
/// future never depends on which process simulates the others (MPI runs).
#[derive(Component, Object, Clone, Debug, PartialEq)]
#[h5pom(no_ext)]
pub(crate) struct RngState {
    seed_0: u64,
    seed_1: u64,
    seed_2: u64,
    seed_3: u64,
    stream: u64,
    word_pos_hi: u64,
    word_pos_lo: u64,
}

impl RngState {
    /// The generator at the stored position.
    pub(crate) fn rng(&self) -> ChaCha8Rng {
        let mut seed = [0u8; 32];
        for (chunk, word) in
            seed.chunks_exact_mut(8)
                .zip([self.seed_0, self.seed_1, self.seed_2, self.seed_3])
        {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos((u128::from(self.word_pos_hi) << 64) | u128::from(self.word_pos_lo));
        rng
    }

    /// The state of `rng`.
    pub(crate) fn capture(rng: &ChaCha8Rng) -> Self {
        let seed = rng.get_seed();
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let pos = rng.get_word_pos();
        RngState {
            seed_0: word(0),
            seed_1: word(1),
            seed_2: word(2),
            seed_3: word(3),
            stream: rng.get_stream(),
            word_pos_hi: (pos >> 64) as u64,
            word_pos_lo: pos as u64,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The schema: the registry and the checksum from one list.

type ComponentDigest = fn(&World, Entity, &mut Hasher);
type ResourceDigest = fn(&World, &mut Hasher);

/// The persisted types: an h5pom [`Registry`] and, for each type, how the checksum reads it.
pub(crate) struct SimSchema {
    registry: Registry,
    components: Vec<(&'static str, ComponentDigest)>,
    resources: Vec<(&'static str, ResourceDigest)>,
}

fn digest_component<C: Component + Object + Digest>(world: &World, e: Entity, h: &mut Hasher) {
    if let Some(c) = world.get::<C>(e) {
        h.str(C::TYPE_TAG);
        c.digest(h);
    }
}

fn digest_resource<R: Resource + Object + Digest>(world: &World, h: &mut Hasher) {
    if let Some(r) = world.get_resource::<R>() {
        h.str(R::TYPE_TAG);
        r.digest(h);
    }
}

fn digest_parent(world: &World, e: Entity, h: &mut Hasher) {
    if let Some(parent) = world.get::<ChildOf>(e)
        && let Some(id) = world.get::<PersistentId>(parent.parent())
    {
        h.str(h5pom::ecs::CHILD_OF_TAG);
        h.u64(id.0);
    }
}

impl SimSchema {
    fn new() -> Self {
        SimSchema {
            registry: Registry::new(),
            components: Vec::new(),
            resources: Vec::new(),
        }
    }

    fn component<C: Component + Object + Digest>(mut self) -> Self {
        self.registry = self.registry.component::<C>();
        self.components
            .push((C::TYPE_TAG, digest_component::<C> as ComponentDigest));
        self
    }

    fn table<C: Component + Object + Digest>(mut self) -> Self {
        self.registry = self.registry.table::<C>();
        self.components
            .push((C::TYPE_TAG, digest_component::<C> as ComponentDigest));
        self
    }

    fn resource<R: Resource + Object + Digest>(mut self) -> Self {
        self.registry = self.registry.resource::<R>();
        self.resources
            .push((R::TYPE_TAG, digest_resource::<R> as ResourceDigest));
        self
    }

    fn hierarchy(mut self) -> Self {
        self.registry = self.registry.hierarchy();
        self.components
            .push((h5pom::ecs::CHILD_OF_TAG, digest_parent as ComponentDigest));
        self
    }

    /// The h5pom registry.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Component digests, in registration order.
    pub(crate) fn component_digests(&self) -> &[(&'static str, ComponentDigest)] {
        &self.components
    }

    /// Resource digests, in registration order.
    pub(crate) fn resource_digests(&self) -> &[(&'static str, ResourceDigest)] {
        &self.resources
    }
}

/// Everything the simulation persists.
pub(crate) fn schema() -> SimSchema {
    SimSchema::new()
        .component::<Cloud>()
        .component::<Particles>()
        .component::<ParticleIds>()
        .table::<Name>()
        .table::<Counters>()
        .table::<CloudStats>()
        .table::<Probe>()
        .table::<ProbeReading>()
        .table::<RngState>()
        .hierarchy()
        .resource::<Params>()
        .resource::<Clock>()
        .resource::<Step>()
}
