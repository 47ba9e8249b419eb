//! Frame series: frames of changing shape, appended under changing array options, read back
//! exactly (the series keeps its first chunk shape and filters).

use h5pom_store::series::{append_frame, read_frame};
use h5pom_store::{ArrayOptions, Dtype, File, Filters, Schema};
use ndarray::Array2;

fn bytes(a: &Array2<f32>) -> Vec<u8> {
    a.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

#[test]
fn frames_grow_and_keep_the_series_filters() {
    for first in [
        Filters::lz4(),
        Filters::zstd(3),
        Filters::deflate(1),
        Filters::none(),
    ] {
        let file = File::in_memory(Schema::new()).unwrap();
        let g = file.hdf5().create_group("s").unwrap();
        let frames: Vec<Array2<f32>> = [(100, 3), (600, 3), (2, 3), (20_000, 3)]
            .iter()
            .enumerate()
            .map(|(k, &(n, m))| Array2::from_shape_fn((n, m), |(i, j)| (k * 7 + i * 3 + j) as f32))
            .collect();
        for (k, a) in frames.iter().enumerate() {
            // The file's options change between frames; the series keeps its own.
            let opts = if k % 2 == 0 {
                first
            } else {
                Filters {
                    shuffle: true,
                    codec: h5pom_store::Codec::Zstd { level: 1 },
                }
            };
            file.set_array_options(ArrayOptions::with_filters(opts));
            append_frame(
                &file,
                &g,
                "/s",
                "x",
                k,
                Dtype::F32,
                a.shape(),
                &bytes(a),
                None,
            )
            .unwrap_or_else(|e| panic!("{first:?} frame {k}: {e}"));
        }
        for (k, a) in frames.iter().enumerate() {
            let back: Array2<f32> = read_frame(&g, "/s", "x", k).unwrap().unwrap();
            assert_eq!(&back, a, "{first:?} frame {k}");
        }
        let stored = g.dataset("x").unwrap().filters().is_empty();
        assert_eq!(
            stored,
            first.is_plain(),
            "{first:?}: the first frame's filters stay"
        );
    }
}
