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
    let n = if elem_size == 0 {
        0
    } else {
        src.len() / elem_size
    };
    if elem_size <= 1 || n <= 1 {
        dst.copy_from_slice(src);
        return;
    }
    let body = n * elem_size;
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
    let n = if elem_size == 0 {
        0
    } else {
        src.len() / elem_size
    };
    if elem_size <= 1 || n <= 1 {
        dst.copy_from_slice(src);
        return;
    }
    let body = n * elem_size;
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
