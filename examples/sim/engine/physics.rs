//! The numerical core, free of ECS: a cell list over all particles and the per-particle update.
//!
//! Model: point particles in a periodic cube of side `L`, pairs closer than the cutoff `rc`
//! repel with the soft force `F(r) = k (1 − r/rc)` (no singularity, so any initial placement
//! is fine), velocities are damped by `γ`, and the integrator is semi-implicit Euler
//! (`v += a dt; v *= 1 − γ dt; x += v dt`, then `x` wrapped into the box).
//!
//! Determinism: forces are computed from the cell list, an immutable copy of the positions at
//! the start of the tick built in a fixed order (clouds by index, particles by row), visiting
//! neighbours in a fixed order; each particle's force is one sequential sum, whichever thread
//! computes it. Reductions use fixed-size chunks combined in order. So the state never depends
//! on the thread count or on scheduling.

use rayon::prelude::*;

/// Particles per parallel work item (and per partial sum of a reduction).
pub(crate) const CHUNK: usize = 4096;

/// Cells per parallel work item of the force evaluation.
const CELL_CHUNK: usize = 256;

/// A cell list of every particle's position at the start of a tick, and the accelerations
/// computed from it.
#[derive(Debug, Default)]
pub(crate) struct Grid {
    /// Cells per axis (≥ 3, so the 27 neighbour cells are distinct).
    cells: usize,
    /// Side of the box.
    box_size: f32,
    /// Side of a cell (≥ the cutoff).
    cell_size: f32,
    /// `start[c] .. start[c + 1]` indexes `pos` for cell `c`.
    start: Vec<u32>,
    /// Positions sorted by cell (stable: clouds in order, rows in order).
    pos: Vec<[f32; 3]>,
    /// Slot in `pos` of each particle, in input order (clouds in order, rows in order).
    slot: Vec<u32>,
    /// First input index of each cloud, in the order given to [`Grid::rebuild`].
    offsets: Vec<usize>,
    /// Force per unit stiffness on each particle, in `pos` order.
    force: Vec<[f32; 3]>,
}

impl Grid {
    fn cell_coord(&self, x: f32) -> usize {
        ((x / self.cell_size) as usize).min(self.cells - 1)
    }

    fn cell_index(&self, p: &[f32]) -> usize {
        let (m, c) = (self.cells, |x| self.cell_coord(x));
        (c(p[2]) * m + c(p[1])) * m + c(p[0])
    }

    /// Rebuilds the list from `clouds` (flat `x y z` rows), in the given order, and computes
    /// the force on every particle.
    pub(crate) fn rebuild<'a>(
        &mut self,
        box_size: f32,
        cutoff: f32,
        clouds: impl Iterator<Item = &'a [f32]> + Clone,
    ) {
        let m = ((box_size / cutoff).floor() as usize).max(3);
        self.cells = m;
        self.box_size = box_size;
        self.cell_size = box_size / m as f32;
        let ncells = m * m * m;
        self.start.clear();
        self.start.resize(ncells + 1, 0);
        self.slot.clear();
        self.offsets.clear();
        for rows in clouds.clone() {
            self.offsets.push(self.slot.len());
            for p in rows.chunks_exact(3) {
                let c = self.cell_index(p);
                self.slot.push(c as u32); // the cell, for now
                self.start[c + 1] += 1;
            }
        }
        for c in 0..ncells {
            self.start[c + 1] += self.start[c];
        }
        let mut fill: Vec<u32> = self.start[..ncells].to_vec();
        self.pos.clear();
        self.pos.resize(self.slot.len(), [0.0; 3]);
        let all = clouds.flat_map(|rows| rows.chunks_exact(3));
        for (p, slot) in all.zip(&mut self.slot) {
            let next = &mut fill[*slot as usize];
            self.pos[*next as usize] = [p[0], p[1], p[2]];
            *slot = *next;
            *next += 1;
        }
        self.compute_forces(cutoff);
    }

    /// The slots of the 27 cells around cell `(x, y, z)`, in a fixed order.
    fn neighbours(&self, x: usize, y: usize, z: usize) -> [(usize, usize); 27] {
        let m = self.cells;
        let around = |c: usize| [if c == 0 { m - 1 } else { c - 1 }, c, (c + 1) % m];
        let mut out = [(0, 0); 27];
        let mut k = 0;
        for nz in around(z) {
            for ny in around(y) {
                for nx in around(x) {
                    let c = (nz * m + ny) * m + nx;
                    out[k] = (self.start[c] as usize, self.start[c + 1] as usize);
                    k += 1;
                }
            }
        }
        out
    }

    /// The force per unit stiffness on every particle, walking the cells in order (each cell's
    /// neighbourhood is looked up once for all its particles).
    fn compute_forces(&mut self, cutoff: f32) {
        let m = self.cells;
        let ncells = m * m * m;
        let (l, half, rc2) = (self.box_size, self.box_size * 0.5, cutoff * cutoff);
        let wrap = |d: f32| {
            if d > half {
                d - l
            } else if d < -half {
                d + l
            } else {
                d
            }
        };
        let this = &*self;
        let parts: Vec<Vec<[f32; 3]>> = (0..ncells.div_ceil(CELL_CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let cells = chunk * CELL_CHUNK..((chunk + 1) * CELL_CHUNK).min(ncells);
                let (a, b) = (this.start[cells.start], this.start[cells.end]);
                let mut out = Vec::with_capacity((b - a) as usize);
                for c in cells {
                    let (lo, hi) = (this.start[c] as usize, this.start[c + 1] as usize);
                    if lo == hi {
                        continue;
                    }
                    let near = this.neighbours(c % m, (c / m) % m, c / (m * m));
                    for p in &this.pos[lo..hi] {
                        let mut f = [0.0f32; 3];
                        for &(a, b) in &near {
                            for q in &this.pos[a..b] {
                                let d = [wrap(p[0] - q[0]), wrap(p[1] - q[1]), wrap(p[2] - q[2])];
                                let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                                if r2 >= rc2 || r2 == 0.0 {
                                    continue; // out of range, or itself
                                }
                                let r = r2.sqrt();
                                let s = (1.0 - r / cutoff) / r;
                                f[0] += s * d[0];
                                f[1] += s * d[1];
                                f[2] += s * d[2];
                            }
                        }
                        out.push(f);
                    }
                }
                out
            })
            .collect();
        self.force.clear();
        self.force.reserve(self.pos.len());
        for part in parts {
            self.force.extend_from_slice(&part);
        }
    }

    /// The first input index of the `k`-th cloud given to [`Grid::rebuild`].
    pub(crate) fn offset(&self, k: usize) -> Option<usize> {
        self.offsets.get(k).copied()
    }

    /// The force on the particle with input index `i` (per unit stiffness).
    fn force_on(&self, i: usize) -> [f32; 3] {
        self.force[self.slot[i] as usize]
    }
}

/// Physical constants of one update.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub(crate) stiffness: f32,
    pub(crate) damping: f32,
    pub(crate) dt: f32,
    pub(crate) mass: f32,
}

/// Advances one cloud (flat `x y z` rows, whose first particle has input index `offset` in
/// `grid`) by one step; returns the number of periodic wraps.
pub(crate) fn advance(
    grid: &Grid,
    offset: usize,
    s: Step,
    pos: &mut [f32],
    vel: &mut [f32],
) -> u64 {
    let l = grid.box_size;
    let kick = s.stiffness * s.dt / s.mass;
    let keep = 1.0 - s.damping * s.dt;
    pos.par_chunks_mut(3 * CHUNK)
        .zip(vel.par_chunks_mut(3 * CHUNK))
        .enumerate()
        .map(|(chunk, (pc, vc))| {
            let first = offset + chunk * CHUNK;
            let mut wraps = 0u64;
            for (i, (p, v)) in pc
                .chunks_exact_mut(3)
                .zip(vc.chunks_exact_mut(3))
                .enumerate()
            {
                let f = grid.force_on(first + i);
                for k in 0..3 {
                    v[k] = (v[k] + f[k] * kick) * keep;
                    let x = p[k] + v[k] * s.dt;
                    let mut w = x - l * (x / l).floor();
                    if w >= l || w < 0.0 {
                        w = 0.0; // rounding at the upper edge
                    }
                    if w != x {
                        wraps += 1;
                    }
                    p[k] = w;
                }
            }
            wraps
        })
        .sum()
}

/// Kinetic energy (with unit mass factor applied by the caller) and largest speed, summed in
/// fixed chunks and combined in order.
pub(crate) fn energy_and_max_speed(vel: &[f32]) -> (f64, f32) {
    let parts: Vec<(f64, f32)> = vel
        .par_chunks(3 * CHUNK)
        .map(|c| {
            let mut e = 0.0f64;
            let mut vmax = 0.0f32;
            for v in c.chunks_exact(3) {
                let v2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
                e += 0.5 * f64::from(v2);
                vmax = vmax.max(v2.sqrt());
            }
            (e, vmax)
        })
        .collect();
    parts
        .into_iter()
        .fold((0.0, 0.0), |(e, m), (pe, pm)| (e + pe, m.max(pm)))
}

/// Count and speed sum of the particles within `radius` of `centre` (periodic distance).
pub(crate) fn probe(
    box_size: f32,
    centre: [f32; 3],
    radius: f32,
    pos: &[f32],
    vel: &[f32],
) -> (u64, f64) {
    let half = box_size * 0.5;
    let r2 = radius * radius;
    let parts: Vec<(u64, f64)> = pos
        .par_chunks(3 * CHUNK)
        .zip(vel.par_chunks(3 * CHUNK))
        .map(|(pc, vc)| {
            let (mut n, mut speed) = (0u64, 0.0f64);
            for (p, v) in pc.chunks_exact(3).zip(vc.chunks_exact(3)) {
                let mut d2 = 0.0f32;
                for k in 0..3 {
                    let mut d = (p[k] - centre[k]).abs();
                    if d > half {
                        d = box_size - d;
                    }
                    d2 += d * d;
                }
                if d2 <= r2 {
                    n += 1;
                    speed += f64::from((v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt());
                }
            }
            (n, speed)
        })
        .collect();
    parts
        .into_iter()
        .fold((0, 0.0), |(n, s), (pn, ps)| (n + pn, s + ps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_close_particles_repel_symmetrically() {
        let mut g = Grid::default();
        let pts = [1.0, 1.0, 1.0, 1.5, 1.0, 1.0];
        g.rebuild(6.0, 1.0, std::iter::once(&pts[..]));
        let (a, b) = (g.force_on(0), g.force_on(1));
        assert!(a[0] < 0.0 && b[0] > 0.0);
        assert_eq!(a[0], -b[0]);
    }

    #[test]
    fn force_crosses_the_periodic_boundary() {
        let mut g = Grid::default();
        let pts = [0.1, 3.0, 3.0, 5.9, 3.0, 3.0];
        g.rebuild(6.0, 1.0, std::iter::once(&pts[..]));
        let a = g.force_on(0);
        assert!(a[0] > 0.0, "pushed away from its image across x = 0: {a:?}");
    }

    #[test]
    fn cell_list_forces_match_all_pairs() {
        // A small chaotic cloud, split in two "clouds", against the O(N²) sum.
        let (l, rc, n) = (7.0f32, 1.0f32, 600);
        let mut x = 0.123_456_f32;
        let mut next = || {
            x = (x * 9301.0 + 0.4927).fract();
            x * l
        };
        let pts: Vec<f32> = (0..3 * n).map(|_| next()).collect();
        let mut g = Grid::default();
        g.rebuild(l, rc, [&pts[..300], &pts[300..]].into_iter());
        for i in 0..n {
            let p = &pts[3 * i..3 * i + 3];
            let mut want = [0.0f64; 3];
            for j in (0..n).filter(|&j| j != i) {
                let q = &pts[3 * j..3 * j + 3];
                let d: Vec<f64> = (0..3)
                    .map(|k| {
                        let d = f64::from(p[k] - q[k]);
                        d - f64::from(l) * (d / f64::from(l)).round()
                    })
                    .collect();
                let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                if r < f64::from(rc) && r > 0.0 {
                    for k in 0..3 {
                        want[k] += (1.0 - r / f64::from(rc)) / r * d[k];
                    }
                }
            }
            let got = g.force_on(i);
            for k in 0..3 {
                assert!(
                    (f64::from(got[k]) - want[k]).abs() < 1e-4 * (1.0 + want[k].abs()),
                    "particle {i} axis {k}: {} vs {}",
                    got[k],
                    want[k]
                );
            }
        }
    }
}
