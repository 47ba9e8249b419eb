//! Side-by-side throughput and compression ratios of the array pipeline.
//!
//! `cargo bench --bench pipeline_ratios` prints one table: for each array size (f32, noisy
//! sine), the write MB/s of a raw `std::fs::write`, of HDF5's own filter pipeline
//! (shuffle + deflate 1 through hdf5-metno's `DatasetBuilder`), and of this pipeline (serial
//! and all threads) uncompressed / shuffle+deflate-1 / shuffle+LZ4 / shuffle+Zstd-1, plus the
//! read MB/s of each pipeline dataset and the compression ratios.
//!
//! Sizes default to 1, 16 and 64 MiB; set `H5POM_BENCH_FULL=1` to add 256 MiB. MB = 10^6 bytes
//! of logical (uncompressed) array data per second. Each figure is the best of a few runs;
//! every write creates a fresh file and includes closing it (data stays in the page cache).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use h5pom_store::pipeline::{ArrayOptions, Concurrency, Filters, Pipeline, auto_chunk};
use ndarray::Array1;

fn data(n: usize) -> Array1<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    Array1::from_shape_fn(n, |i| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        (i as f32 * 1e-3).sin() * 1000.0 + noise * 0.01
    })
}

fn best(reps: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..reps).map(|_| f()).min().unwrap_or_default()
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn time_write(path: &Path, mut w: impl FnMut(&hdf5::File)) -> Duration {
    let _ = std::fs::remove_file(path);
    let t = Instant::now();
    let f = hdf5::File::create(path).expect("create");
    w(&f);
    f.close().expect("close");
    t.elapsed()
}

struct Row {
    name: String,
    write_serial: Option<f64>,
    write_par: f64,
    read_par: Option<f64>,
    ratio: f64,
}

fn main() {
    let full = std::env::var("H5POM_BENCH_FULL").is_ok_and(|v| v != "0")
        || std::env::args().any(|a| a == "--full");
    let mut sizes_mib = vec![1usize, 16, 64];
    if full {
        sizes_mib.push(256);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.h5");
    let threads = rayon::current_num_threads();
    let mut serial = Pipeline::new(Concurrency::Serial);
    let mut par = Pipeline::new(Concurrency::default());
    let reader = Pipeline::new(Concurrency::default());
    println!(
        "array pipeline benchmark: f32 noisy sine, {threads} threads, MB/s = 1e6 B/s of array data"
    );
    for mib in sizes_mib {
        let n = (mib << 20) / 4;
        let a = data(n);
        let bytes = n * 4;
        let raw: &[u8] = bytemuck_f32(a.as_slice().expect("standard layout"));
        let reps = if mib <= 16 { 7 } else { 3 };
        let chunk = auto_chunk(&[n], 4);
        let mut rows = Vec::new();

        let raw_path = dir.path().join("raw.bin");
        let t = best(reps, || {
            let _ = std::fs::remove_file(&raw_path);
            let t = Instant::now();
            std::fs::write(&raw_path, raw).expect("write");
            t.elapsed()
        });
        rows.push(Row {
            name: "raw std::fs::write".into(),
            write_serial: None,
            write_par: mbps(bytes, t),
            read_par: None,
            ratio: 1.0,
        });

        let mut h5_ratio = 0.0;
        let t = best(reps, || {
            time_write(&path, |f| {
                let ds = f
                    .new_dataset_builder()
                    .with_data(&a)
                    .chunk(chunk.clone())
                    .shuffle()
                    .deflate(1)
                    .create("x")
                    .expect("hdf5 write");
                h5_ratio = bytes as f64 / ds.storage_size() as f64;
            })
        });
        let t_h5_read = best(reps, || {
            let f = hdf5::File::open(&path).expect("open");
            let t = Instant::now();
            black_box(f.dataset("x").expect("ds").read_1d::<f32>().expect("read"));
            t.elapsed()
        });
        rows.push(Row {
            name: "HDF5 own pipeline shuffle+deflate-1".into(),
            write_serial: Some(mbps(bytes, t)),
            write_par: f64::NAN,
            read_par: Some(mbps(bytes, t_h5_read)),
            ratio: h5_ratio,
        });

        for (name, filters) in [
            ("pipeline uncompressed", Filters::none()),
            ("pipeline shuffle+deflate-1", Filters::deflate(1)),
            ("pipeline shuffle+lz4", Filters::lz4()),
            ("pipeline shuffle+zstd-1", Filters::zstd(1)),
        ] {
            let opts = ArrayOptions::with_filters(filters);
            let mut ratio = 0.0;
            let ts = best(reps, || {
                time_write(&path, |f| {
                    serial.write(f, "x", a.view(), &opts).expect("write");
                })
            });
            let tp = best(reps, || {
                time_write(&path, |f| {
                    ratio = par.write(f, "x", a.view(), &opts).expect("write").ratio();
                })
            });
            let tr = best(reps, || {
                let f = hdf5::File::open(&path).expect("open");
                let ds = f.dataset("x").expect("ds");
                let t = Instant::now();
                black_box(reader.read::<f32, ndarray::Ix1>(&ds).expect("read"));
                t.elapsed()
            });
            rows.push(Row {
                name: name.into(),
                write_serial: Some(mbps(bytes, ts)),
                write_par: mbps(bytes, tp),
                read_par: Some(mbps(bytes, tr)),
                ratio,
            });
        }

        println!("\n{mib} MiB ({n} f32, chunk {chunk:?})");
        println!(
            "{:<38} {:>12} {:>12} {:>12} {:>7}",
            "",
            "write 1 thr",
            format!("write {threads} thr"),
            "read",
            "ratio"
        );
        let fmt = |v: Option<f64>| match v {
            Some(x) if x.is_finite() => format!("{x:>12.0}"),
            _ => format!("{:>12}", "-"),
        };
        for r in &rows {
            println!(
                "{:<38} {} {} {} {:>7.2}",
                r.name,
                fmt(r.write_serial),
                fmt(Some(r.write_par)),
                fmt(r.read_par),
                r.ratio
            );
        }
        let get = |name: &str| rows.iter().find(|r| r.name == name).expect("row");
        let raw_w = get("raw std::fs::write").write_par;
        let h5 = get("HDF5 own pipeline shuffle+deflate-1")
            .write_serial
            .unwrap_or(f64::NAN);
        let un = get("pipeline uncompressed");
        let de = get("pipeline shuffle+deflate-1");
        let lz = get("pipeline shuffle+lz4");
        println!(
            "targets: uncompressed/raw = {:.2} (>= 0.9) | deflate-1 {threads} thr / HDF5 = {:.2} (>= 3.5) | \
             deflate-1 {threads} thr / 1 thr = {:.2} (>= 1.8) | lz4 {threads} thr = {:.0} MB/s (>= 1000)",
            un.write_par / raw_w,
            de.write_par / h5,
            de.write_par / de.write_serial.unwrap_or(f64::NAN),
            lz.write_par
        );
    }
}

fn bytemuck_f32(s: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and every byte is initialized; u8 has alignment 1 and the
    // length is the slice's exact byte size.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}
