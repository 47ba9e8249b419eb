//! HDF5's byte-shuffle filter (id 2, `cd_values = [element size]`).
//!
//! For `n = len / s` elements of `s` bytes, byte `j` of element `i` goes to `out[j * n + i]`;
//! the `len % s` trailing bytes are copied unchanged; with `s <= 1` or `n <= 1` the filter is
//! the identity (exactly like `H5Z_filter_shuffle`).

/// Elements per tile of the blocked transpose (tiles stay in L1; the inner loops vectorize).
const TILE: usize = 32;

/// Shuffles `src` into `dst` (same length) for elements of `elem_size` bytes.
pub(crate) fn shuffle(src: &[u8], dst: &mut [u8], elem_size: usize) {
    assert_eq!(src.len(), dst.len(), "shuffle buffers differ in length");
    let n = src.len().checked_div(elem_size).unwrap_or(0);
    if elem_size <= 1 || n <= 1 {
        dst.copy_from_slice(src);
        return;
    }
    let body = n * elem_size;
    #[cfg(target_arch = "x86_64")]
    if matches!(elem_size, 2 | 4 | 8) && std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU supports SSSE3 (checked just above).
        unsafe { simd::shuffle(&src[..body], &mut dst[..body], n, elem_size) };
        dst[body..].copy_from_slice(&src[body..]);
        return;
    }
    match elem_size {
        2 => shuffle_const::<2>(&src[..body], &mut dst[..body], n),
        4 => shuffle_const::<4>(&src[..body], &mut dst[..body], n),
        8 => shuffle_const::<8>(&src[..body], &mut dst[..body], n),
        s => shuffle_generic(&src[..body], &mut dst[..body], n, s),
    }
    dst[body..].copy_from_slice(&src[body..]);
}

/// Inverse of [`shuffle`].
pub(crate) fn unshuffle(src: &[u8], dst: &mut [u8], elem_size: usize) {
    assert_eq!(src.len(), dst.len(), "unshuffle buffers differ in length");
    let n = src.len().checked_div(elem_size).unwrap_or(0);
    if elem_size <= 1 || n <= 1 {
        dst.copy_from_slice(src);
        return;
    }
    let body = n * elem_size;
    #[cfg(target_arch = "x86_64")]
    if matches!(elem_size, 2 | 4 | 8) && std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU supports SSSE3 (checked just above).
        unsafe { simd::unshuffle(&src[..body], &mut dst[..body], n, elem_size) };
        dst[body..].copy_from_slice(&src[body..]);
        return;
    }
    match elem_size {
        2 => unshuffle_const::<2>(&src[..body], &mut dst[..body], n),
        4 => unshuffle_const::<4>(&src[..body], &mut dst[..body], n),
        8 => unshuffle_const::<8>(&src[..body], &mut dst[..body], n),
        s => unshuffle_generic(&src[..body], &mut dst[..body], n, s),
    }
    dst[body..].copy_from_slice(&src[body..]);
}

fn shuffle_const<const S: usize>(src: &[u8], dst: &mut [u8], n: usize) {
    let full = n / TILE * TILE;
    for (t, tile) in src[..full * S].chunks_exact(TILE * S).enumerate() {
        let base = t * TILE;
        for j in 0..S {
            let row = &mut dst[j * n + base..j * n + base + TILE];
            for (i, out) in row.iter_mut().enumerate() {
                *out = tile[i * S + j];
            }
        }
    }
    for i in full..n {
        for j in 0..S {
            dst[j * n + i] = src[i * S + j];
        }
    }
}

fn unshuffle_const<const S: usize>(src: &[u8], dst: &mut [u8], n: usize) {
    let full = n / TILE * TILE;
    for (t, tile) in dst[..full * S].chunks_exact_mut(TILE * S).enumerate() {
        let base = t * TILE;
        let mut rows = [[0u8; TILE]; S];
        for (j, r) in rows.iter_mut().enumerate() {
            r.copy_from_slice(&src[j * n + base..j * n + base + TILE]);
        }
        for (i, el) in tile.chunks_exact_mut(S).enumerate() {
            for j in 0..S {
                el[j] = rows[j][i];
            }
        }
    }
    for i in full..n {
        for j in 0..S {
            dst[i * S + j] = src[j * n + i];
        }
    }
}

fn shuffle_generic(src: &[u8], dst: &mut [u8], n: usize, s: usize) {
    for (i, el) in src.chunks_exact(s).enumerate() {
        for (j, &b) in el.iter().enumerate() {
            dst[j * n + i] = b;
        }
    }
}

fn unshuffle_generic(src: &[u8], dst: &mut [u8], n: usize, s: usize) {
    for (i, el) in dst.chunks_exact_mut(s).enumerate() {
        for (j, b) in el.iter_mut().enumerate() {
            *b = src[j * n + i];
        }
    }
}

/// SSSE3 kernels: per block of 16 elements, `pshufb` groups each 16-byte vector's bytes by
/// plane, then an S x S transpose of (16 / S)-byte lanes across the S vectors yields 16 bytes of
/// each plane. The transpose is an involution, so unshuffle runs the same steps backwards.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// Byte permutation grouping the bytes of 16 / S elements of S bytes by plane.
    fn group_mask(s: usize) -> [u8; 16] {
        let per = 16 / s;
        std::array::from_fn(|p| ((p % per) * s + p / per) as u8)
    }

    fn ungroup_mask(s: usize) -> [u8; 16] {
        let per = 16 / s;
        std::array::from_fn(|q| ((q % s) * per + q / s) as u8)
    }

    #[target_feature(enable = "ssse3")]
    fn transpose(s: usize, v: &mut [__m128i; 8]) {
        match s {
            2 => {
                let (a, b) = (v[0], v[1]);
                v[0] = _mm_unpacklo_epi64(a, b);
                v[1] = _mm_unpackhi_epi64(a, b);
            }
            4 => {
                let t0 = _mm_unpacklo_epi32(v[0], v[1]);
                let t1 = _mm_unpacklo_epi32(v[2], v[3]);
                let t2 = _mm_unpackhi_epi32(v[0], v[1]);
                let t3 = _mm_unpackhi_epi32(v[2], v[3]);
                v[0] = _mm_unpacklo_epi64(t0, t1);
                v[1] = _mm_unpackhi_epi64(t0, t1);
                v[2] = _mm_unpacklo_epi64(t2, t3);
                v[3] = _mm_unpackhi_epi64(t2, t3);
            }
            _ => {
                let a: [__m128i; 8] = [
                    _mm_unpacklo_epi16(v[0], v[1]),
                    _mm_unpackhi_epi16(v[0], v[1]),
                    _mm_unpacklo_epi16(v[2], v[3]),
                    _mm_unpackhi_epi16(v[2], v[3]),
                    _mm_unpacklo_epi16(v[4], v[5]),
                    _mm_unpackhi_epi16(v[4], v[5]),
                    _mm_unpacklo_epi16(v[6], v[7]),
                    _mm_unpackhi_epi16(v[6], v[7]),
                ];
                let b: [__m128i; 8] = [
                    _mm_unpacklo_epi32(a[0], a[2]),
                    _mm_unpackhi_epi32(a[0], a[2]),
                    _mm_unpacklo_epi32(a[1], a[3]),
                    _mm_unpackhi_epi32(a[1], a[3]),
                    _mm_unpacklo_epi32(a[4], a[6]),
                    _mm_unpackhi_epi32(a[4], a[6]),
                    _mm_unpacklo_epi32(a[5], a[7]),
                    _mm_unpackhi_epi32(a[5], a[7]),
                ];
                v[0] = _mm_unpacklo_epi64(b[0], b[4]);
                v[1] = _mm_unpackhi_epi64(b[0], b[4]);
                v[2] = _mm_unpacklo_epi64(b[1], b[5]);
                v[3] = _mm_unpackhi_epi64(b[1], b[5]);
                v[4] = _mm_unpacklo_epi64(b[2], b[6]);
                v[5] = _mm_unpackhi_epi64(b[2], b[6]);
                v[6] = _mm_unpacklo_epi64(b[3], b[7]);
                v[7] = _mm_unpackhi_epi64(b[3], b[7]);
            }
        }
    }

    /// Shuffles `n` elements of `s` (2, 4 or 8) bytes; `src.len() == dst.len() == n * s`.
    #[target_feature(enable = "ssse3")]
    pub(super) fn shuffle(src: &[u8], dst: &mut [u8], n: usize, s: usize) {
        debug_assert!(src.len() == n * s && dst.len() == n * s && matches!(s, 2 | 4 | 8));
        let m = group_mask(s);
        // SAFETY: `m` is 16 readable bytes.
        let mask = unsafe { _mm_loadu_si128(m.as_ptr().cast()) };
        let blocks = n / 16;
        let mut v = [_mm_setzero_si128(); 8];
        for blk in 0..blocks {
            let block = &src[blk * 16 * s..(blk + 1) * 16 * s];
            for (i, x) in v.iter_mut().take(s).enumerate() {
                // SAFETY: `block` has 16 * s bytes, so bytes 16 * i .. 16 * i + 16 are in bounds.
                let raw = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * i).cast()) };
                *x = _mm_shuffle_epi8(raw, mask);
            }
            transpose(s, &mut v);
            for (j, x) in v.iter().take(s).enumerate() {
                let out = &mut dst[j * n + blk * 16..j * n + blk * 16 + 16];
                // SAFETY: `out` is exactly 16 writable bytes.
                unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), *x) };
            }
        }
        for i in blocks * 16..n {
            for j in 0..s {
                dst[j * n + i] = src[i * s + j];
            }
        }
    }

    /// Inverse of [`shuffle`].
    #[target_feature(enable = "ssse3")]
    pub(super) fn unshuffle(src: &[u8], dst: &mut [u8], n: usize, s: usize) {
        debug_assert!(src.len() == n * s && dst.len() == n * s && matches!(s, 2 | 4 | 8));
        let m = ungroup_mask(s);
        // SAFETY: `m` is 16 readable bytes.
        let mask = unsafe { _mm_loadu_si128(m.as_ptr().cast()) };
        let blocks = n / 16;
        let mut v = [_mm_setzero_si128(); 8];
        for blk in 0..blocks {
            for (j, x) in v.iter_mut().take(s).enumerate() {
                let inp = &src[j * n + blk * 16..j * n + blk * 16 + 16];
                // SAFETY: `inp` is exactly 16 readable bytes.
                *x = unsafe { _mm_loadu_si128(inp.as_ptr().cast()) };
            }
            transpose(s, &mut v);
            let block = &mut dst[blk * 16 * s..(blk + 1) * 16 * s];
            for (i, x) in v.iter().take(s).enumerate() {
                let y = _mm_shuffle_epi8(*x, mask);
                // SAFETY: `block` has 16 * s bytes, so bytes 16 * i .. 16 * i + 16 are in bounds.
                unsafe { _mm_storeu_si128(block.as_mut_ptr().add(16 * i).cast(), y) };
            }
        }
        for i in blocks * 16..n {
            for j in 0..s {
                dst[i * s + j] = src[j * n + i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(src: &[u8], s: usize) -> Vec<u8> {
        let n = src.len() / s;
        if s <= 1 || n <= 1 {
            return src.to_vec();
        }
        let mut out = vec![0; src.len()];
        for i in 0..n {
            for j in 0..s {
                out[j * n + i] = src[i * s + j];
            }
        }
        out[n * s..].copy_from_slice(&src[n * s..]);
        out
    }

    #[test]
    fn matches_naive_and_inverts() {
        for s in [1usize, 2, 3, 4, 8, 16] {
            for len in [0usize, 1, 2, 5, 31, 64, 100, 257, 1000, 4099] {
                let src: Vec<u8> = (0..len).map(|i| (i * 7 + i / 3) as u8).collect();
                let mut sh = vec![0; len];
                shuffle(&src, &mut sh, s);
                assert_eq!(sh, naive(&src, s), "s={s} len={len}");
                let mut back = vec![0; len];
                unshuffle(&sh, &mut back, s);
                assert_eq!(back, src, "s={s} len={len}");
            }
        }
    }
}
