//! Criterion benchmarks of the array pipeline (16 MiB f32, noisy sine): write per codec,
//! serial vs all threads, and parallel read. `cargo bench --bench pipeline` (~1 min).
//! For the side-by-side table with HDF5's own pipeline and raw writes see `pipeline_ratios`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_main};
use h5pom_store::pipeline::{ArrayOptions, Concurrency, Filters, Pipeline};
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

fn bench(c: &mut Criterion) {
    let n = (16 << 20) / 4;
    let a = data(n);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = hdf5::File::create(dir.path().join("bench.h5")).expect("create");
    let codecs = [
        ("none", Filters::none()),
        ("deflate1", Filters::deflate(1)),
        ("lz4", Filters::lz4()),
        ("zstd1", Filters::zstd(1)),
    ];
    let mut g = c.benchmark_group("write_16MiB");
    g.throughput(Throughput::Bytes((n * 4) as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (mode, conc) in [
        ("serial", Concurrency::Serial),
        ("threads", Concurrency::default()),
    ] {
        let mut p = Pipeline::new(conc);
        for (name, filters) in codecs {
            let opts = ArrayOptions::with_filters(filters);
            g.bench_function(format!("{name}/{mode}"), |b| {
                b.iter(|| p.write(&file, name, a.view(), &opts).expect("write"))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("read_16MiB");
    g.throughput(Throughput::Bytes((n * 4) as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let p = Pipeline::default();
    for (name, _) in codecs {
        let ds = file.dataset(name).expect("dataset");
        g.bench_function(format!("{name}/threads"), |b| {
            b.iter(|| black_box(p.read::<f32, ndarray::Ix1>(&ds).expect("read")))
        });
    }
    g.finish();
}

// The macros generate undocumented items.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
