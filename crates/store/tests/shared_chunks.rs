//! Sharing scopes: an array written right after a history frame of the same bytes takes the
//! frame's encoded chunks (encoded once), and only when the bytes are the same.

use h5pom_store::pipeline::{Concurrency, Pipeline, share_encoded_chunks};
use h5pom_store::series::{append_frame, array_chunk, read_frame};
use h5pom_store::{ArrayOptions, Dtype, File, Filters, Schema};
use ndarray::Array2;

fn bytes_of(a: &Array2<f32>) -> &[u8] {
    let s = a.as_slice().expect("standard layout");
    // SAFETY: `s` is a live, initialized `[f32]`; any byte of an `f32` is a valid `u8`, `u8`
    // has alignment 1, and the length covers exactly the slice's bytes.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

fn setup() -> (File, h5pom_store::reexports::hdf5::Group, Array2<f32>) {
    let file = File::in_memory(Schema::new()).unwrap();
    file.set_array_options(ArrayOptions::with_filters(Filters::deflate(1)));
    let g = file.hdf5().create_group("s").unwrap();
    let a = Array2::from_shape_fn((300_000, 3), |(i, j)| ((i * 7 + j) % 1000) as f32 * 0.5);
    (file, g, a)
}

/// History-style frame append of `a` (frame `k` of `x`).
fn append(file: &File, g: &h5pom_store::reexports::hdf5::Group, a: &Array2<f32>, k: usize) {
    let chunk = array_chunk(file, a.shape(), Dtype::F32);
    append_frame(
        file,
        g,
        "/s",
        "x",
        k,
        Dtype::F32,
        a.shape(),
        bytes_of(a),
        Some(&chunk),
    )
    .unwrap();
}

#[test]
fn the_same_bytes_are_encoded_once_in_a_scope() {
    let (file, g, a) = setup();
    let mut p = Pipeline::new(Concurrency::Threads(2));
    let opts = file.array_options();
    let stats = {
        let _scope = share_encoded_chunks();
        append(&file, &g, &a, 0);
        p.write(&g, "y", a.view(), &opts).unwrap()
    };
    assert!(stats.chunks > 1, "{stats:?}");
    assert_eq!(
        stats.chunks_shared, stats.chunks,
        "every chunk taken from the frame"
    );
    let y: ndarray::ArrayD<f32> = p.read(&g.dataset("y").unwrap()).unwrap();
    assert_eq!(y, a.clone().into_dyn());
    // libhdf5 decodes the shared chunks too (deflate is HDF5's own filter).
    let h: Array2<f32> = g.dataset("y").unwrap().read_2d().unwrap();
    assert_eq!(h, a);
    let x: Array2<f32> = read_frame(&g, "/s", "x", 0).unwrap().unwrap();
    assert_eq!(x, a);

    // Outside a scope nothing is shared.
    append(&file, &g, &a, 1);
    let stats = p.write(&g, "z", a.view(), &opts).unwrap();
    assert_eq!(stats.chunks_shared, 0);
}

#[test]
fn changed_bytes_at_the_same_address_are_encoded_again() {
    let (file, g, mut a) = setup();
    let mut p = Pipeline::new(Concurrency::Threads(2));
    let opts = file.array_options();
    let _scope = share_encoded_chunks();
    append(&file, &g, &a, 0);
    a[[150_000, 1]] += 1.0;
    let stats = p.write(&g, "y", a.view(), &opts).unwrap();
    assert_eq!(stats.chunks_shared, 0, "the content differs: {stats:?}");
    let y: Array2<f32> = g.dataset("y").unwrap().read_2d().unwrap();
    assert_eq!(y, a);
    // Another shape or other filters do not match either.
    let mut other = opts.clone();
    other.filters = Filters::deflate(2);
    append(&file, &g, &a, 1);
    let stats = p.write(&g, "w", a.view(), &other).unwrap();
    assert_eq!(stats.chunks_shared, 0);
    let v = a.clone().into_shape_with_order((900_000,)).unwrap();
    let stats = p.write(&g, "v", v.view(), &opts).unwrap();
    assert_eq!(stats.chunks_shared, 0);
}
