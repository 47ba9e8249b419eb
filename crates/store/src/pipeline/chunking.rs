//! Chunk shapes, chunk grids, and copies between a C-order array and padded chunk buffers.

use std::ops::Range;

/// Chunks aim at this many bytes (see [`auto_chunk`]).
pub const CHUNK_TARGET_BYTES: usize = 1 << 20;
/// A chunk that spans whole trailing axes may grow up to this many bytes.
pub const CHUNK_MAX_BYTES: usize = 4 << 20;

/// The automatic chunk shape for an array of `shape` with `elem_size`-byte elements.
///
/// Rule (every entry >= 1; zero-length axes count as length 1):
/// 1. If the whole array is at most [`CHUNK_TARGET_BYTES`] (1 MiB), one chunk covers it.
/// 2. Otherwise walk the axes from the outermost. Let `inner` be the bytes of one slab of the
///    remaining (trailing) axes, taken whole:
///    - `inner <= 1 MiB`: take `ceil(1 MiB / inner)` slabs along this axis (clamped to its
///      length) and stop: the chunk is 1-2 MiB, or the whole rest of the array;
///    - `1 MiB < inner <= 4 MiB` ([`CHUNK_MAX_BYTES`]): take one slab and stop;
///    - `inner > 4 MiB`: take one slab (chunk length 1) and continue with the next axis.
///
/// So chunks are 1-4 MiB and, whenever a slab of the trailing axes fits in 4 MiB, they span
/// the trailing axes whole: each chunk is then one contiguous byte range of a C-order array,
/// which the encoder reads without any gather copy.
pub fn auto_chunk(shape: &[usize], elem_size: usize) -> Vec<usize> {
    let mut chunk: Vec<usize> = shape.iter().map(|&s| s.max(1)).collect();
    let elem = elem_size.max(1);
    let total = chunk.iter().fold(elem, |acc, &c| acc.saturating_mul(c));
    if total <= CHUNK_TARGET_BYTES {
        return chunk;
    }
    for i in 0..chunk.len() {
        let inner = chunk[i + 1..]
            .iter()
            .fold(elem, |acc, &c| acc.saturating_mul(c));
        if inner <= CHUNK_TARGET_BYTES {
            chunk[i] = CHUNK_TARGET_BYTES.div_ceil(inner).clamp(1, chunk[i]);
            break;
        }
        chunk[i] = 1;
        if inner <= CHUNK_MAX_BYTES {
            break;
        }
    }
    chunk
}

/// The regular grid of chunks over an array, chunks numbered in C order.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    pub(crate) shape: Vec<usize>,
    pub(crate) chunk: Vec<usize>,
    counts: Vec<usize>,
    len: usize,
}

impl Grid {
    /// A grid of `chunk`-shaped chunks over `shape` (ranks equal, chunk entries >= 1).
    pub(crate) fn new(shape: &[usize], chunk: &[usize]) -> Self {
        debug_assert_eq!(shape.len(), chunk.len());
        let counts: Vec<usize> = shape
            .iter()
            .zip(chunk)
            .map(|(&s, &c)| s.div_ceil(c.max(1)))
            .collect();
        let len = counts.iter().product();
        Self {
            shape: shape.to_vec(),
            chunk: chunk.to_vec(),
            counts,
            len,
        }
    }

    /// Number of chunks (0 when any axis has length 0).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Element offset of chunk number `idx`.
    pub(crate) fn offset(&self, mut idx: usize) -> Vec<u64> {
        let mut off = vec![0u64; self.counts.len()];
        for d in (0..self.counts.len()).rev() {
            let c = self.counts[d];
            off[d] = ((idx % c) * self.chunk[d]) as u64;
            idx /= c;
        }
        off
    }

    /// Elements in one (full, padded) chunk.
    pub(crate) fn chunk_elems(&self) -> usize {
        self.chunk.iter().product()
    }
}

/// Calls `f(array_byte_offset, chunk_byte_offset, len)` for each contiguous run shared by the
/// C-order array `shape` and the C-order chunk buffer of shape `chunk` placed at `offset`,
/// covering the part of the chunk inside the array (edge chunks are clipped).
pub(crate) fn for_each_run(
    shape: &[usize],
    chunk: &[usize],
    offset: &[u64],
    elem: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let nd = shape.len();
    if nd == 0 {
        f(0, 0, elem);
        return;
    }
    let off: Vec<usize> = offset.iter().map(|&o| o as usize).collect();
    let valid: Vec<usize> = (0..nd)
        .map(|d| chunk[d].min(shape[d].saturating_sub(off[d])))
        .collect();
    if valid.contains(&0) {
        return;
    }
    // Smallest k such that every axis after k is covered whole by both layouts: the runs are
    // then `valid[k] * prod(shape[k+1..])` elements long.
    let mut k = nd - 1;
    while k > 0 && chunk[k] == shape[k] && valid[k] == shape[k] {
        k -= 1;
    }
    let mut a_stride = vec![elem; nd];
    let mut c_stride = vec![elem; nd];
    for d in (0..nd - 1).rev() {
        a_stride[d] = a_stride[d + 1] * shape[d + 1];
        c_stride[d] = c_stride[d + 1] * chunk[d + 1];
    }
    let run = valid[k] * a_stride[k];
    let base: usize = (0..nd).map(|d| off[d] * a_stride[d]).sum();
    let mut idx = vec![0usize; k];
    loop {
        let a: usize = base + (0..k).map(|d| idx[d] * a_stride[d]).sum::<usize>();
        let c: usize = (0..k).map(|d| idx[d] * c_stride[d]).sum();
        f(a, c, run);
        // Odometer over axes 0..k.
        let mut d = k;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < valid[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// If the chunk at `offset` is full (not clipped) and its bytes form one contiguous range of
/// the C-order array, returns that byte range.
pub(crate) fn contiguous_range(
    shape: &[usize],
    chunk: &[usize],
    offset: &[u64],
    elem: usize,
) -> Option<Range<usize>> {
    let nd = shape.len();
    for d in 0..nd {
        if offset[d] as usize + chunk[d] > shape[d] {
            return None;
        }
    }
    // Leading axes of chunk length 1, then one axis of any length, then whole axes.
    let mut d = 0;
    while d < nd && chunk[d] == 1 {
        d += 1;
    }
    if d + 1 < nd && chunk[d + 1..] != shape[d + 1..] {
        return None;
    }
    let mut start = 0usize;
    let mut stride = elem;
    for a in (0..nd).rev() {
        start += offset[a] as usize * stride;
        stride *= shape[a];
    }
    let len = chunk.iter().product::<usize>() * elem;
    Some(start..start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_chunk_rule() {
        assert_eq!(auto_chunk(&[10], 4), vec![10]);
        assert_eq!(auto_chunk(&[0, 5], 8), vec![1, 5]);
        assert_eq!(auto_chunk(&[], 4), Vec::<usize>::new());
        // 64 Mi f32 = 256 MiB, 1-D: 1 MiB chunks.
        assert_eq!(auto_chunk(&[64 << 20], 4), vec![256 << 10]);
        // rows of 4 KiB: 256 rows per chunk.
        assert_eq!(auto_chunk(&[100_000, 1024], 4), vec![256, 1024]);
        // rows of 3 MiB: one row per chunk.
        assert_eq!(auto_chunk(&[10, 3 << 18], 4), vec![1, 3 << 18]);
        // rows of 16 MiB: split the last axis.
        assert_eq!(auto_chunk(&[3, 4 << 20], 4), vec![1, 256 << 10]);
        for shape in [
            vec![7usize, 300, 500],
            vec![1 << 30],
            vec![2, 2, 2, 1 << 22],
        ] {
            let c = auto_chunk(&shape, 8);
            let bytes: usize = c.iter().product::<usize>() * 8;
            assert!(bytes <= CHUNK_MAX_BYTES, "{shape:?} -> {c:?}");
            assert!(c.iter().all(|&x| x >= 1));
        }
    }

    #[test]
    fn grid_offsets() {
        let g = Grid::new(&[5, 4], &[2, 3]);
        assert_eq!(g.len(), 6);
        assert_eq!(g.offset(0), vec![0, 0]);
        assert_eq!(g.offset(1), vec![0, 3]);
        assert_eq!(g.offset(5), vec![4, 3]);
        assert_eq!(Grid::new(&[0, 4], &[1, 4]).len(), 0);
    }

    #[test]
    fn runs_cover_clipped_chunk() {
        let shape = [5usize, 4];
        let chunk = [2usize, 3];
        let g = Grid::new(&shape, &chunk);
        let mut seen = [0u8; 20];
        for i in 0..g.len() {
            for_each_run(&shape, &chunk, &g.offset(i), 1, |a, c, n| {
                assert!(c + n <= 6);
                for x in &mut seen[a..a + n] {
                    *x += 1;
                }
            });
        }
        assert!(seen.iter().all(|&x| x == 1));
        assert_eq!(contiguous_range(&[6, 4], &[2, 4], &[2, 0], 4), Some(32..64));
        assert_eq!(contiguous_range(&[5, 4], &[2, 4], &[4, 0], 4), None);
        assert_eq!(contiguous_range(&[5, 4], &[2, 3], &[0, 0], 4), None);
        assert_eq!(
            contiguous_range(&[5, 4, 3], &[1, 2, 3], &[1, 2, 0], 1),
            Some(18..24)
        );
    }
}
