//! The numerical core, free of ECS: a cell list over all particles and the per-particle update.
//!
//! Model: point particles in a periodic cube of side `L`, pairs closer than the cutoff `rc`
//! repel with the soft force `F(r) = k (1 − r/rc)` (no singularity, so any initial placement
//! is fine), velocities are damped by `γ`, and the integrator is semi-implicit Euler
//! (`v += a dt; v *= 1 − γ dt; x += v dt`, then `x` wrapped into the box).
//!
//! Determinism: each particle's new state depends only on the cell list, which is an
//! immutable copy of the positions at the start of the tick, built in a fixed order (clouds
//! by index, particles by row). Neighbours are visited in a fixed order, so the float sums
//! never depend on the thread count or on scheduling. Reductions use fixed-size chunks.

use rayon::prelude::*;

/// Particles per parallel work item (and per partial sum of a reduction).
pub(crate) const CHUNK: usize = 4096;

/// A cell list of every particle's position at the start of a tick.
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
    /// Scratch: cell of each particle in input order.
    cell_of: Vec<u32>,
}

impl Grid {
    fn cell_coord(&self, x: f32) -> usize {
        ((x / self.cell_size) as usize).min(self.cells - 1)
    }

    fn cell_index(&self, p: [f32; 3]) -> usize {
        let (m, c) = (self.cells, |x| self.cell_coord(x));
        (c(p[2]) * m + c(p[1])) * m + c(p[0])
    }

    /// Rebuilds the list from `clouds` (flat `x y z` rows), in the given order.
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
        self.cell_of.clear();
        for rows in clouds.clone() {
            for p in rows.chunks_exact(3) {
                let c = self.cell_index([p[0], p[1], p[2]]);
                self.cell_of.push(c as u32);
                self.start[c + 1] += 1;
            }
        }
        for c in 0..ncells {
            self.start[c + 1] += self.start[c];
        }
        let mut fill: Vec<u32> = self.start[..ncells].to_vec();
        self.pos.clear();
        self.pos.resize(self.cell_of.len(), [0.0; 3]);
        let all = clouds.flat_map(|rows| rows.chunks_exact(3));
        for (p, &c) in all.zip(&self.cell_of) {
            let slot = &mut fill[c as usize];
            self.pos[*slot as usize] = [p[0], p[1], p[2]];
            *slot += 1;
        }
    }

    /// The acceleration (force per unit `stiffness`) on a particle at `p` from every other
    /// particle within `cutoff`. A particle at exactly the same place (itself) is skipped.
    fn force(&self, p: [f32; 3], cutoff: f32) -> [f32; 3] {
        let m = self.cells as isize;
        let (l, half) = (self.box_size, self.box_size * 0.5);
        let rc2 = cutoff * cutoff;
        let (cx, cy, cz) = (
            self.cell_coord(p[0]) as isize,
            self.cell_coord(p[1]) as isize,
            self.cell_coord(p[2]) as isize,
        );
        let wrap = |d: f32| {
            if d > half {
                d - l
            } else if d < -half {
                d + l
            } else {
                d
            }
        };
        let mut f = [0.0f32; 3];
        for dz in -1..=1 {
            let z = (cz + dz).rem_euclid(m) as usize;
            for dy in -1..=1 {
                let y = (cy + dy).rem_euclid(m) as usize;
                for dx in -1..=1 {
                    let x = (cx + dx).rem_euclid(m) as usize;
                    let c = (z * self.cells + y) * self.cells + x;
                    let (a, b) = (self.start[c] as usize, self.start[c + 1] as usize);
                    for q in &self.pos[a..b] {
                        let d = [wrap(p[0] - q[0]), wrap(p[1] - q[1]), wrap(p[2] - q[2])];
                        let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                        if r2 >= rc2 || r2 == 0.0 {
                            continue;
                        }
                        let r = r2.sqrt();
                        let s = (1.0 - r / cutoff) / r;
                        f[0] += s * d[0];
                        f[1] += s * d[1];
                        f[2] += s * d[2];
                    }
                }
            }
        }
        f
    }
}

/// Physical constants of one update.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub(crate) cutoff: f32,
    pub(crate) stiffness: f32,
    pub(crate) damping: f32,
    pub(crate) dt: f32,
    pub(crate) mass: f32,
}

/// Advances one cloud (flat `x y z` rows) by one step against `grid`; returns the number of
/// periodic wraps.
pub(crate) fn advance(grid: &Grid, s: Step, pos: &mut [f32], vel: &mut [f32]) -> u64 {
    let l = grid.box_size;
    let kick = s.stiffness * s.dt / s.mass;
    let keep = 1.0 - s.damping * s.dt;
    pos.par_chunks_mut(3 * CHUNK)
        .zip(vel.par_chunks_mut(3 * CHUNK))
        .map(|(pc, vc)| {
            let mut wraps = 0u64;
            for (p, v) in pc.chunks_exact_mut(3).zip(vc.chunks_exact_mut(3)) {
                let f = grid.force([p[0], p[1], p[2]], s.cutoff);
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
        let a = g.force([1.0, 1.0, 1.0], 1.0);
        let b = g.force([1.5, 1.0, 1.0], 1.0);
        assert!(a[0] < 0.0 && b[0] > 0.0);
        assert_eq!(a[0], -b[0]);
    }

    #[test]
    fn force_crosses_the_periodic_boundary() {
        let mut g = Grid::default();
        let pts = [0.1, 3.0, 3.0, 5.9, 3.0, 3.0];
        g.rebuild(6.0, 1.0, std::iter::once(&pts[..]));
        let a = g.force([0.1, 3.0, 3.0], 1.0);
        assert!(a[0] > 0.0, "pushed away from its image across x = 0: {a:?}");
    }
}
