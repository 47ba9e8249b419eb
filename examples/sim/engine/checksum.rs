//! The checksum of a world: each persisted entity's BLAKE3 digest (its `PersistentId`, then
//! its components in registration order), summed as 256-bit numbers (so the sum does not
//! depend on the order in which entities are visited, nor on how many processes hold them:
//! an MPI run adds the ranks' sums), then BLAKE3 of the version, the entity count, that sum and
//! the resources in registration order. Numbers count by their little-endian bits (so
//! `-0.0 != 0.0` and NaN payloads count), strings and arrays length-prefixed. Two worlds have
//! the same checksum exactly when their persisted states are equal (up to BLAKE3 collisions of
//! sums), however they were built (straight run, snapshot, resume) and on however many threads
//! or processes.

use bevy_ecs::prelude::*;
use h5pom::ecs::{Persist, PersistentId};
use ndarray::{Array, Dimension};

use super::model::{
    Clock, Cloud, CloudStats, Counters, Name, Params, ParticleIds, Particles, Probe, ProbeReading,
    RngState, SimSchema, Step,
};

/// Version of the byte stream hashed; bump it when the encoding below changes.
const CHECKSUM_VERSION: &str = "h5pom-sim checksum v2";

/// A BLAKE3 hasher with typed, unambiguous writers.
pub(crate) struct Hasher(blake3::Hasher);

impl Hasher {
    fn new() -> Self {
        Hasher(blake3::Hasher::new())
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.0.update(&v.to_le_bytes());
    }

    pub(crate) fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.update(s.as_bytes());
    }

    /// Shape, then the elements in logical (row-major) order, whatever the memory layout.
    pub(crate) fn array<T: Copy, D: Dimension, const N: usize>(
        &mut self,
        a: &Array<T, D>,
        bytes: impl Fn(T) -> [u8; N],
    ) {
        self.u64(a.ndim() as u64);
        for &n in a.shape() {
            self.u64(n as u64);
        }
        let mut buf = Vec::with_capacity(1 << 16);
        for &x in a.iter() {
            buf.extend_from_slice(&bytes(x));
            if buf.len() >= 1 << 16 {
                self.0.update(&buf);
                buf.clear();
            }
        }
        self.0.update(&buf);
    }
}

/// A persisted type's contribution to the checksum: every field, in declaration order.
pub(crate) trait Digest {
    fn digest(&self, h: &mut Hasher);
}

impl Digest for Particles {
    fn digest(&self, h: &mut Hasher) {
        h.array(&self.positions, |x: f32| x.to_bits().to_le_bytes());
        h.array(&self.velocities, |x: f32| x.to_bits().to_le_bytes());
    }
}

impl Digest for ParticleIds {
    fn digest(&self, h: &mut Hasher) {
        h.array(&self.ids, u64::to_le_bytes);
    }
}

impl Digest for Cloud {
    fn digest(&self, h: &mut Hasher) {
        h.u32(self.index);
        h.f32(self.mass);
    }
}

impl Digest for Name {
    fn digest(&self, h: &mut Hasher) {
        h.str(&self.name);
    }
}

impl Digest for Counters {
    fn digest(&self, h: &mut Hasher) {
        h.u64(self.kicks);
        h.u64(self.wraps);
    }
}

impl Digest for CloudStats {
    fn digest(&self, h: &mut Hasher) {
        h.f64(self.kinetic_energy);
        h.f32(self.max_speed);
    }
}

impl Digest for Probe {
    fn digest(&self, h: &mut Hasher) {
        for v in [self.x, self.y, self.z, self.radius] {
            h.f32(v);
        }
    }
}

impl Digest for ProbeReading {
    fn digest(&self, h: &mut Hasher) {
        h.u64(self.step);
        h.u64(self.count);
        h.f64(self.mean_speed);
    }
}

impl Digest for Params {
    fn digest(&self, h: &mut Hasher) {
        for v in [
            self.box_size,
            self.cutoff,
            self.stiffness,
            self.damping,
            self.dt,
        ] {
            h.f32(v);
        }
        h.u32(self.kicks_per_tick);
        h.f32(self.kick_sigma);
        h.u64(self.particles);
        h.u64(self.seed);
    }
}

impl Digest for Clock {
    fn digest(&self, h: &mut Hasher) {
        h.f64(self.time);
    }
}

impl Digest for Step {
    fn digest(&self, h: &mut Hasher) {
        h.u64(self.step);
    }
}

impl Digest for RngState {
    fn digest(&self, h: &mut Hasher) {
        // The generator's observable state: seed, stream and position.
        let rng = self.rng();
        h.0.update(&rng.get_seed());
        h.u64(rng.get_stream());
        h.0.update(&rng.get_word_pos().to_le_bytes());
    }
}

/// One process's part of the checksum: its entity count and the sum of its entities'
/// digests (four little-endian 64-bit words, added with carries dropped per word; the same in
/// every process), and the digest of the resources (the same in every process).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChecksumParts {
    /// `[entities, sum words 0..4]`: what processes add up.
    pub(crate) counts: [u64; 5],
    pub(crate) resources: [u8; 32],
}

/// The checksum parts of the persisted entities and resources of `world`.
///
/// Entities are those with [`Persist`] and an assigned [`PersistentId`] (call it after a flush).
pub(crate) fn checksum_parts(world: &mut World, schema: &SimSchema) -> ChecksumParts {
    let entities: Vec<(u64, Entity)> = world
        .query_filtered::<(Entity, &PersistentId), With<Persist>>()
        .iter(world)
        .filter(|(_, id)| id.0 != 0)
        .map(|(e, id)| (id.0, e))
        .collect();
    let mut parts = ChecksumParts::default();
    parts.counts[0] = entities.len() as u64;
    for &(id, e) in &entities {
        let mut h = Hasher::new();
        h.u64(id);
        for (_, digest) in schema.component_digests() {
            digest(world, e, &mut h);
        }
        let d = h.0.finalize();
        for (k, word) in d.as_bytes().chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(word);
            parts.counts[1 + k] = parts.counts[1 + k].wrapping_add(u64::from_le_bytes(b));
        }
    }
    let mut h = Hasher::new();
    for (_, digest) in schema.resource_digests() {
        digest(world, &mut h);
    }
    parts.resources = *h.0.finalize().as_bytes();
    parts
}

/// The checksum of parts whose `counts` were added over all processes, as lower-case hex.
pub(crate) fn combine(parts: &ChecksumParts) -> String {
    let mut h = Hasher::new();
    h.str(CHECKSUM_VERSION);
    for c in parts.counts {
        h.u64(c);
    }
    h.0.update(&parts.resources);
    h.0.finalize().to_hex().to_string()
}

/// The checksum of every persisted entity and resource of `world`, as lower-case hex.
///
/// Entities are those with [`Persist`] and an assigned [`PersistentId`] (call it after a flush).
pub(crate) fn world_checksum(world: &mut World, schema: &SimSchema) -> String {
    combine(&checksum_parts(world, schema))
}
