//! Deflate at level 1 (zlib format, as HDF5's filter stores it) with three implementations,
//! side by side in one run, on simulation-like float32 data: miniz_oxide (pure Rust), zlib-rs
//! (pure Rust, through flate2) and libdeflate (C, through libdeflater). Each codec compresses
//! and decompresses the same 4 MiB chunks of positions (uniform in a box) and velocities
//! (normal), with and without HDF5's byte shuffle, on one thread; the table gives MB/s of
//! uncompressed bytes and the stored/original ratio, best of 5 passes.
//!
//! `cargo bench --bench deflate_codecs` (skipped under `cargo test`).

use std::io::Write;
use std::time::Instant;

const CHUNK: usize = 4 << 20;

/// Deterministic data shaped like the sim's arrays: positions in [0, 100)³ drifting by
/// velocities drawn from an approximate normal (sum of uniforms), float32.
fn data(n: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(n * 4);
    let half = n / 2;
    for _ in 0..half {
        out.extend_from_slice(&((uniform() * 100.0) as f32).to_le_bytes());
    }
    for _ in half..n {
        let v: f64 = (0..4).map(|_| uniform()).sum::<f64>() - 2.0;
        out.extend_from_slice(&(v as f32).to_le_bytes());
    }
    out
}

/// HDF5's shuffle filter for 4-byte elements.
fn shuffle(src: &[u8]) -> Vec<u8> {
    let n = src.len() / 4;
    let mut out = vec![0; src.len()];
    for (i, e) in src.chunks_exact(4).enumerate() {
        for b in 0..4 {
            out[b * n + i] = e[b];
        }
    }
    out
}

type Compress = Box<dyn FnMut(&[u8], &mut Vec<u8>) -> usize>;
type Decompress = Box<dyn FnMut(&[u8], &mut [u8])>;

fn miniz() -> (Compress, Decompress) {
    (
        Box::new(|src, out| {
            let z = miniz_oxide::deflate::compress_to_vec_zlib(src, 1);
            out.clear();
            out.extend_from_slice(&z);
            z.len()
        }),
        Box::new(|src, dst| {
            let n = miniz_oxide::inflate::decompress_slice_iter_to_slice(
                dst,
                std::iter::once(src),
                true,
                false,
            )
            .expect("miniz inflate");
            assert_eq!(n, dst.len());
        }),
    )
}

fn zlib_rs() -> (Compress, Decompress) {
    (
        Box::new(|src, out| {
            out.clear();
            let mut e =
                flate2::write::ZlibEncoder::new(std::mem::take(out), flate2::Compression::new(1));
            e.write_all(src).expect("zlib-rs deflate");
            *out = e.finish().expect("zlib-rs finish");
            out.len()
        }),
        Box::new(|src, dst| {
            let mut d = flate2::Decompress::new(true);
            d.decompress(src, dst, flate2::FlushDecompress::Finish)
                .expect("zlib-rs inflate");
            assert_eq!(d.total_out() as usize, dst.len());
        }),
    )
}

fn libdeflate() -> (Compress, Decompress) {
    let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).expect("level"));
    let mut d = libdeflater::Decompressor::new();
    (
        Box::new(move |src, out| {
            out.resize(c.zlib_compress_bound(src.len()), 0);
            let n = c.zlib_compress(src, out).expect("libdeflate deflate");
            out.truncate(n);
            n
        }),
        Box::new(move |src, dst| {
            let n = d.zlib_decompress(src, dst).expect("libdeflate inflate");
            assert_eq!(n, dst.len());
        }),
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("deflate_codecs: run with `cargo bench --bench deflate_codecs`");
        return;
    }
    let raw = data(16 * CHUNK / 4);
    let shuffled: Vec<u8> = raw.chunks(CHUNK).flat_map(shuffle).collect();
    println!(
        "{:<12} {:<8} {:>10} {:>12} {:>8}",
        "codec", "shuffle", "deflate", "inflate", "ratio"
    );
    for (name, make) in [
        ("miniz_oxide", miniz as fn() -> (Compress, Decompress)),
        ("zlib-rs", zlib_rs),
        ("libdeflate", libdeflate),
    ] {
        for (label, input) in [("off", &raw), ("on", &shuffled)] {
            let (mut c, mut d) = make();
            let mut best_c = f64::INFINITY;
            let mut best_d = f64::INFINITY;
            let mut stored = 0;
            let mut out = Vec::new();
            let mut back = vec![0u8; CHUNK];
            for _ in 0..5 {
                let mut compressed = Vec::new();
                let t = Instant::now();
                for chunk in input.chunks(CHUNK) {
                    let n = c(chunk, &mut out);
                    compressed.push(out[..n].to_vec());
                }
                best_c = best_c.min(t.elapsed().as_secs_f64());
                stored = compressed.iter().map(Vec::len).sum::<usize>();
                let t = Instant::now();
                for (z, chunk) in compressed.iter().zip(input.chunks(CHUNK)) {
                    d(z, &mut back[..chunk.len()]);
                }
                best_d = best_d.min(t.elapsed().as_secs_f64());
                assert!(
                    compressed
                        .iter()
                        .zip(input.chunks(CHUNK))
                        .all(|(z, chunk)| {
                            d(z, &mut back[..chunk.len()]);
                            back[..chunk.len()] == *chunk
                        }),
                    "{name}: round trip"
                );
            }
            let mb = input.len() as f64 / 1e6;
            println!(
                "{name:<12} {label:<8} {:>7.0} MB/s {:>7.0} MB/s {:>8.3}",
                mb / best_c,
                mb / best_d,
                stored as f64 / input.len() as f64
            );
        }
    }
}
