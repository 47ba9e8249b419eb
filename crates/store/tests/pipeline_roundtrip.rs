//! Round-trip tests of the array pipeline: random shapes (zero-length axes included), every
//! dtype, random chunk shapes, every codec, shuffle on/off, strided and Fortran-order inputs,
//! serial and threaded. Datasets HDF5 itself can decode (none/shuffle/deflate) are also read
//! back through HDF5's own pipeline, which checks the stored bytes follow HDF5's formats.

use std::fmt::Debug;
use std::sync::Arc;

use h5pom_store::pipeline::{
    ArrayOptions, Codec, Concurrency, Dtype, Element, Filters, Pipeline, PipelineError, WriteJob,
};
use ndarray::{Array, ArrayD, Axis, Dimension, IxDyn, ShapeBuilder, Slice};
use proptest::prelude::*;

trait Gen: Element + PartialEq + Debug {
    fn gen_val(i: u64) -> Self;
}

macro_rules! gen_int {
    ($($t:ty),*) => {$(impl Gen for $t {
        fn gen_val(i: u64) -> Self {
            // Smooth-ish with some noise so codecs see both runs and entropy.
            ((i / 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61).wrapping_add(i / 7) as $t
        }
    })*};
}
gen_int!(i8, i16, i32, i64, u8, u16, u32, u64);
impl Gen for f32 {
    fn gen_val(i: u64) -> Self {
        (i as f32 * 0.37).sin() * 100.0 + (i % 5) as f32
    }
}
impl Gen for f64 {
    fn gen_val(i: u64) -> Self {
        (i as f64 * 0.11).cos() * 1e6 + (i % 11) as f64 * 1e-3
    }
}

fn tmp_file() -> (tempfile::TempDir, hdf5::File) {
    let dir = tempfile::tempdir().unwrap();
    let f = hdf5::File::create(dir.path().join("t.h5")).unwrap();
    (dir, f)
}

/// How the input view is laid out in memory.
#[derive(Debug, Clone, Copy)]
enum Layout {
    Standard,
    Fortran,
    Strided,
}

fn make_array<T: Gen>(shape: &[usize], layout: Layout) -> (ArrayD<T>, ArrayD<T>) {
    let n: usize = shape.iter().product();
    let logical = Array::from_shape_fn(IxDyn(shape), |ix| {
        let mut flat = 0u64;
        for (d, &i) in ix.slice().iter().enumerate() {
            flat = flat * shape[d] as u64 + i as u64;
        }
        T::gen_val(flat)
    });
    let backing = match layout {
        Layout::Standard => logical.clone(),
        Layout::Fortran => {
            let mut f = Array::from_shape_vec(IxDyn(shape).f(), vec![T::gen_val(0); n]).unwrap();
            f.assign(&logical);
            f
        }
        Layout::Strided => {
            // Twice as long along axis 0; the view takes every other row.
            let mut big_shape = shape.to_vec();
            if let Some(s0) = big_shape.first_mut() {
                *s0 *= 2;
            }
            let mut big = Array::from_elem(IxDyn(&big_shape), T::gen_val(99));
            if !shape.is_empty() {
                big.slice_axis_mut(Axis(0), Slice::new(0, None, 2))
                    .assign(&logical);
            }
            big
        }
    };
    (logical, backing)
}

fn roundtrip_one<T: Gen>(
    shape: &[usize],
    chunk: Option<Vec<usize>>,
    filters: Filters,
    layout: Layout,
    conc: Concurrency,
) {
    let (_dir, file) = tmp_file();
    let (logical, backing) = make_array::<T>(shape, layout);
    let view = match layout {
        Layout::Strided if !shape.is_empty() => backing.slice_axis(Axis(0), Slice::new(0, None, 2)),
        _ => backing.view(),
    };
    assert_eq!(view, logical.view());
    let opts = ArrayOptions { filters, chunk };
    let mut p = Pipeline::new(conc);
    let stats = p.write(&file, "x", view, &opts).unwrap();
    assert_eq!(stats.bytes_in as usize, logical.len() * T::DTYPE.size());
    let ds = file.dataset("x").unwrap();
    assert_eq!(ds.shape(), shape);
    let back: ArrayD<T> = p.read(&ds).unwrap();
    assert_eq!(back, logical, "pipeline read");
    let hdf5_can_read = !matches!(filters.codec, Codec::Lz4 | Codec::Zstd { .. });
    if hdf5_can_read {
        let h: ArrayD<T> = ds.read_dyn().unwrap();
        assert_eq!(h, logical, "HDF5 read");
    }
    // Overwrite in place with the same options: still correct.
    p.write(&file, "x", logical.view(), &opts).unwrap();
    let back: ArrayD<T> = p.read(&file.dataset("x").unwrap()).unwrap();
    assert_eq!(back, logical, "after overwrite");
}

fn codec_strategy() -> impl Strategy<Value = Codec> {
    prop_oneof![
        Just(Codec::None),
        (1u8..=9).prop_map(|level| Codec::Deflate { level }),
        Just(Codec::Lz4),
        (-3i32..=5).prop_map(|level| Codec::Zstd { level }),
    ]
}

fn case_strategy() -> impl Strategy<Value = (Vec<usize>, Option<Vec<usize>>)> {
    (1usize..=3).prop_flat_map(|rank| {
        (
            proptest::collection::vec(0usize..=11, rank),
            proptest::option::of(proptest::collection::vec(1usize..=7, rank)),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn roundtrip_random(
        (shape, chunk) in case_strategy(),
        dtype_idx in 0usize..10,
        codec in codec_strategy(),
        shuffle in any::<bool>(),
        layout in prop_oneof![Just(Layout::Standard), Just(Layout::Fortran), Just(Layout::Strided)],
        threaded in any::<bool>(),
    ) {
        let filters = Filters { shuffle, codec };
        let conc = if threaded { Concurrency::Threads(2) } else { Concurrency::Serial };
        match Dtype::ALL[dtype_idx] {
            Dtype::I8 => roundtrip_one::<i8>(&shape, chunk, filters, layout, conc),
            Dtype::I16 => roundtrip_one::<i16>(&shape, chunk, filters, layout, conc),
            Dtype::I32 => roundtrip_one::<i32>(&shape, chunk, filters, layout, conc),
            Dtype::I64 => roundtrip_one::<i64>(&shape, chunk, filters, layout, conc),
            Dtype::U8 => roundtrip_one::<u8>(&shape, chunk, filters, layout, conc),
            Dtype::U16 => roundtrip_one::<u16>(&shape, chunk, filters, layout, conc),
            Dtype::U32 => roundtrip_one::<u32>(&shape, chunk, filters, layout, conc),
            Dtype::U64 => roundtrip_one::<u64>(&shape, chunk, filters, layout, conc),
            Dtype::F32 => roundtrip_one::<f32>(&shape, chunk, filters, layout, conc),
            Dtype::F64 => roundtrip_one::<f64>(&shape, chunk, filters, layout, conc),
        }
    }
}

#[test]
fn large_multi_chunk_every_codec_threaded() {
    // 3 MiB of f32 with auto chunks (1 MiB) and explicit ragged chunks.
    let shape = [768usize, 1024];
    for filters in [
        Filters::none(),
        Filters::deflate(1),
        Filters::lz4(),
        Filters::zstd(1),
        Filters {
            shuffle: true,
            codec: Codec::None,
        },
    ] {
        for chunk in [None, Some(vec![100, 300])] {
            roundtrip_one::<f32>(
                &shape,
                chunk,
                filters,
                Layout::Standard,
                Concurrency::default(),
            );
        }
    }
}

#[test]
fn edge_chunks_are_padded_full_size() {
    // 10 x 7 with 4 x 4 chunks: the stored edge chunks must decode to full 4 x 4 chunks, which
    // HDF5's own reader checks (it rejects short chunks).
    roundtrip_one::<i32>(
        &[10, 7],
        Some(vec![4, 4]),
        Filters::deflate(3),
        Layout::Standard,
        Concurrency::Threads(2),
    );
    roundtrip_one::<u16>(
        &[10, 7],
        Some(vec![4, 4]),
        Filters {
            shuffle: true,
            codec: Codec::None,
        },
        Layout::Fortran,
        Concurrency::Serial,
    );
}

#[test]
fn write_many_mixed_dtypes_and_zero_length() {
    let (_dir, file) = tmp_file();
    let a = Array::from_shape_fn((300, 500), |(i, j)| (i * 500 + j) as f64);
    let b = Array::from_shape_fn(100_000, |i| i as i16);
    let c = ndarray::Array2::<u8>::zeros((0, 4));
    let d = ndarray::arr0(7i64);
    let (o1, o2, o3) = (
        ArrayOptions::with_filters(Filters::deflate(1)),
        ArrayOptions::with_filters(Filters::lz4()),
        ArrayOptions::default(),
    );
    let g = file.create_group("g").unwrap();
    let jobs = [
        WriteJob::new(&file, "a", a.view(), &o1),
        WriteJob::new(&g, "b", b.view(), &o2),
        WriteJob::new(&file, "c", c.view(), &o1),
        WriteJob::new(&file, "d", d.view(), &o3),
        WriteJob::new(&g, "e", a.t(), &o3),
    ];
    let mut p = Pipeline::default();
    let st = p.write_many(&jobs).unwrap();
    assert_eq!(st.datasets, 5);
    assert!(st.ratio() > 1.0);
    let ra: ndarray::Array2<f64> = p.read(&file.dataset("a").unwrap()).unwrap();
    assert_eq!(ra, a);
    let rb: ndarray::Array1<i16> = p.read(&g.dataset("b").unwrap()).unwrap();
    assert_eq!(rb, b);
    let cds = file.dataset("c").unwrap();
    assert_eq!(cds.shape(), vec![0, 4]);
    assert!(cds.is_chunked());
    let rc: ndarray::Array2<u8> = p.read(&cds).unwrap();
    assert_eq!(rc, c);
    let rd: ndarray::Array0<i64> = p.read(&file.dataset("d").unwrap()).unwrap();
    assert_eq!(rd, d);
    let re: ndarray::Array2<f64> = p.read(&g.dataset("e").unwrap()).unwrap();
    assert_eq!(re, a.t());
}

#[test]
fn replace_resize_and_overwrite() {
    let (_dir, file) = tmp_file();
    let mut p = Pipeline::new(Concurrency::Threads(2));
    let opts = ArrayOptions::with_filters(Filters::zstd(3));
    let a = Array::from_shape_fn((50, 40), |(i, j)| (i * 40 + j) as f32);
    p.write(&file, "x", a.view(), &opts).unwrap();
    // Same options, other shape: resized in place (maxshape is unlimited).
    let b = Array::from_shape_fn((80, 40), |(i, j)| (i + j) as f32);
    p.write(&file, "x", b.view(), &opts).unwrap();
    let ds = file.dataset("x").unwrap();
    assert_eq!(ds.shape(), vec![80, 40]);
    assert_eq!(p.read::<f32, _>(&ds).unwrap(), b);
    // Other dtype: replaced.
    let c = Array::from_shape_fn((5, 6), |(i, j)| (i * j) as i32);
    p.write(&file, "x", c.view(), &opts).unwrap();
    let ds = file.dataset("x").unwrap();
    assert_eq!(p.read::<i32, _>(&ds).unwrap(), c);
    // Other filters: replaced; HDF5 sees deflate now.
    p.write(
        &file,
        "x",
        c.view(),
        &ArrayOptions::with_filters(Filters::deflate(6)),
    )
    .unwrap();
    let ds = file.dataset("x").unwrap();
    assert_eq!(ds.read_2d::<i32>().unwrap(), c);
    // Shrink.
    let d = c.slice(ndarray::s![..2, ..3]).to_owned();
    p.write(
        &file,
        "x",
        d.view(),
        &ArrayOptions::with_filters(Filters::deflate(6)),
    )
    .unwrap();
    let ds = file.dataset("x").unwrap();
    assert_eq!(p.read::<i32, _>(&ds).unwrap(), d);
}

#[test]
fn dtype_and_rank_mismatch_are_errors() {
    let (_dir, file) = tmp_file();
    let p = Pipeline::default();
    let mut pw = Pipeline::default();
    let a = Array::from_shape_fn((4, 4), |(i, j)| (i + j) as f32);
    pw.write(&file, "x", a.view(), &ArrayOptions::default())
        .unwrap();
    let ds = file.dataset("x").unwrap();
    match p.read::<f64, ndarray::Ix2>(&ds) {
        Err(PipelineError::DtypeMismatch {
            dataset,
            expected,
            found,
        }) => {
            assert_eq!(dataset, "/x");
            assert_eq!(expected, Dtype::F64);
            assert_eq!(found, "float32");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.read::<f32, ndarray::Ix1>(&ds),
        Err(PipelineError::RankMismatch {
            expected: 1,
            found: 2,
            ..
        })
    ));
    let bad = ArrayOptions::with_filters(Filters::deflate(12));
    assert!(matches!(
        pw.write(&file, "y", a.view(), &bad),
        Err(PipelineError::InvalidOptions { .. })
    ));
    let bad = ArrayOptions::default().chunk(vec![0, 2]);
    assert!(matches!(
        pw.write(&file, "y", a.view(), &bad),
        Err(PipelineError::InvalidOptions { .. })
    ));
    let s = file
        .new_dataset::<hdf5::types::VarLenUnicode>()
        .shape(2)
        .create("s")
        .unwrap();
    assert!(matches!(
        p.read::<u8, ndarray::Ix1>(&s),
        Err(PipelineError::DtypeMismatch { .. })
    ));
}

#[test]
fn missing_chunks_read_as_fill_value_and_foreign_layouts_fall_back() {
    let (_dir, file) = tmp_file();
    let ds = file
        .new_dataset::<i32>()
        .shape((10, 10))
        .chunk((4, 4))
        .shuffle()
        .deflate(4)
        .fill_value(-5)
        .create("sparse")
        .unwrap();
    ds.write_slice(&Array::from_elem((3, 3), 9i32), ndarray::s![0..3, 0..3])
        .unwrap();
    let p = Pipeline::new(Concurrency::Threads(2));
    let got: ndarray::Array2<i32> = p.read(&ds).unwrap();
    assert_eq!(got, ds.read_2d::<i32>().unwrap());
    assert_eq!(got[[9, 9]], -5);
    // Contiguous and fletcher32 datasets go through HDF5.
    let a = Array::from_shape_fn(100, |i| i as u64);
    let c = file
        .new_dataset_builder()
        .with_data(&a)
        .create("contig")
        .unwrap();
    assert_eq!(p.read::<u64, ndarray::Ix1>(&c).unwrap(), a);
    let f = file
        .new_dataset_builder()
        .with_data(&a)
        .chunk(16)
        .fletcher32()
        .create("fl")
        .unwrap();
    assert_eq!(p.read::<u64, ndarray::IxDyn>(&f).unwrap(), a.into_dyn());
}

#[test]
fn writer_inside_its_own_pool_does_not_deadlock() {
    let (_dir, file) = tmp_file();
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap(),
    );
    let mut p = Pipeline::new(Concurrency::Pool(pool.clone()));
    let a = Array::from_shape_fn(3 << 20, |i| (i % 1000) as f32);
    let opts = ArrayOptions::with_filters(Filters::lz4());
    pool.install(|| p.write(&file, "x", a.view(), &opts))
        .unwrap();
    let back: ndarray::Array1<f32> = pool
        .install(|| p.read(&file.dataset("x").unwrap()))
        .unwrap();
    assert_eq!(back, a);
}

#[test]
fn dcpl_filters_match_h5py_registration() {
    let (_dir, file) = tmp_file();
    let mut p = Pipeline::default();
    let a = Array::from_shape_fn(1000, |i| i as i32);
    use hdf5::filters::Filter;
    let cases: [(Filters, Vec<Filter>); 4] = [
        (
            Filters::deflate(4),
            vec![Filter::Shuffle, Filter::Deflate(4)],
        ),
        (
            Filters::lz4(),
            vec![Filter::Shuffle, Filter::User(32004, vec![0])],
        ),
        (
            Filters::zstd(-2),
            vec![Filter::Shuffle, Filter::User(32015, vec![(-2i32) as u32])],
        ),
        (
            Filters {
                shuffle: false,
                codec: Codec::Zstd { level: 9 },
            },
            vec![Filter::User(32015, vec![9])],
        ),
    ];
    for (i, (filters, want)) in cases.into_iter().enumerate() {
        let name = format!("d{i}");
        p.write(&file, &name, a.view(), &ArrayOptions::with_filters(filters))
            .unwrap();
        let ds = file.dataset(&name).unwrap();
        assert_eq!(ds.filters(), want);
        assert_eq!(ds.chunk(), Some(vec![1000]));
        let dcpl = ds.dcpl().unwrap();
        assert!(dcpl.chunk().is_some());
        assert_eq!(ds.space().unwrap().maxdims(), vec![None]);
    }
}

/// Interop with h5py + hdf5plugin, through `H5POM_PYTHON` (`.cargo/config.toml` points it at
/// `scripts/python`, the project's .venv once `make setup-test` ran). Skipped only if the
/// variable is unset; a Python without h5py or hdf5plugin fails the test.
#[test]
fn h5py_hdf5plugin_interop() {
    let Ok(py) = std::env::var("H5POM_PYTHON") else {
        eprintln!("skipped: H5POM_PYTHON not set");
        return;
    };
    let probe = std::process::Command::new(&py)
        .args(["-c", "import h5py, hdf5plugin"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "{py} cannot import h5py and hdf5plugin: run `make setup-test`"
    );
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.h5");
    let theirs = dir.path().join("theirs.h5");
    let a = Array::from_shape_fn((301, 257), |(i, j)| ((i * 257 + j) as f32 * 0.01).sin());
    let b = Array::from_shape_fn(70_001, |i| (i as i64 % 977) - 400);
    let cases = [
        ("deflate", Filters::deflate(1)),
        ("lz4", Filters::lz4()),
        ("zstd", Filters::zstd(1)),
        (
            "lz4_noshuf",
            Filters {
                shuffle: false,
                codec: Codec::Lz4,
            },
        ),
        (
            "shuf",
            Filters {
                shuffle: true,
                codec: Codec::None,
            },
        ),
        ("plain", Filters::none()),
    ];
    {
        let f = hdf5::File::create(&ours).unwrap();
        let mut p = Pipeline::new(Concurrency::Threads(2));
        for (name, filters) in cases {
            let o = ArrayOptions {
                filters,
                chunk: Some(vec![64, 100]),
            };
            p.write(&f, &format!("a_{name}"), a.view(), &o).unwrap();
            p.write(
                &f,
                &format!("b_{name}"),
                b.view(),
                &ArrayOptions::with_filters(filters),
            )
            .unwrap();
        }
    }
    let script = r#"
import sys, h5py, hdf5plugin, numpy as np
ours, theirs = sys.argv[1], sys.argv[2]
i, j = np.meshgrid(np.arange(301), np.arange(257), indexing="ij")
a = np.sin(((i * 257 + j).astype(np.float32)) * np.float32(0.01)).astype(np.float32)
b = (np.arange(70001, dtype=np.int64) % 977) - 400
with h5py.File(ours, "r") as f:
    for name in ["deflate", "lz4", "zstd", "lz4_noshuf", "shuf", "plain"]:
        assert f["a_" + name].dtype == np.float32
        np.testing.assert_allclose(f["a_" + name][()], a, rtol=1e-6, atol=1e-6)
        assert (f["b_" + name][()] == b).all(), name
        assert f["a_" + name].maxshape == (None, None)
with h5py.File(theirs, "w") as f:
    f.create_dataset("lz4", data=b, chunks=(10000,), **hdf5plugin.LZ4())
    f.create_dataset("zstd", data=b, chunks=(10000,), shuffle=True, **hdf5plugin.Zstd(clevel=5))
    f.create_dataset("gzip", data=a, chunks=(50, 50), shuffle=True, compression="gzip")
print("ok")
"#;
    let out = std::process::Command::new(&py)
        .args([
            "-c",
            script,
            ours.to_str().unwrap(),
            theirs.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = hdf5::File::open(&theirs).unwrap();
    let p = Pipeline::default();
    assert_eq!(
        p.read::<i64, ndarray::Ix1>(&f.dataset("lz4").unwrap())
            .unwrap(),
        b
    );
    assert_eq!(
        p.read::<i64, ndarray::Ix1>(&f.dataset("zstd").unwrap())
            .unwrap(),
        b
    );
    let g: ndarray::Array2<f32> = p.read(&f.dataset("gzip").unwrap()).unwrap();
    assert!(
        g.iter()
            .zip(a.iter())
            .all(|(x, y)| (x - y).abs() <= 1e-6 * y.abs().max(1.0))
    );
}
