#!/usr/bin/env python3
"""Write h5pom-layout objects whose stored types do not match the Rust types reading them.

Each group is a valid h5pom object (a `loader-key` and the fields of its Rust type) with one
field of the wrong type; tests/interop.rs expects a typed error naming that field:

  /float_for_u32    Counter { count: u32 }      count = 1.5 (float64)        -> TypeMismatch
  /string_for_u32   Counter { count: u32 }      count = "12" (string)        -> TypeMismatch
  /too_big_for_u8   Level { level: u8 }         level = 300 (int64)          -> OutOfRange
  /negative_for_u8  Level { level: u8 }         level = -1 (int8)            -> OutOfRange
  /f64_for_f32      Samples { data: [f32] }     data = float64 dataset       -> TypeMismatch
  /rank_2_for_1     Samples { data: [f32] }     data = float32 (2, 2) dataset -> TypeMismatch
  /good_*           the same types, well typed (so a failure above is the field's, not the file's)
"""

import argparse

import h5py
import numpy as np


def obj(f, name, tag):
    g = f.create_group(name)
    g.attrs["loader-key"] = tag
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the HDF5 file to create")
    args = ap.parse_args()
    with h5py.File(args.out, "w") as f:
        obj(f, "float_for_u32", "Counter").attrs["count"] = np.float64(1.5)
        obj(f, "string_for_u32", "Counter").attrs["count"] = "12"
        obj(f, "too_big_for_u8", "Level").attrs["level"] = np.int64(300)
        obj(f, "negative_for_u8", "Level").attrs["level"] = np.int8(-1)
        g = obj(f, "f64_for_f32", "Samples")
        g.create_dataset("data", data=np.arange(4, dtype=np.float64), chunks=True, maxshape=(None,))
        g = obj(f, "rank_2_for_1", "Samples")
        g.create_dataset("data", data=np.ones((2, 2), dtype=np.float32), chunks=True, maxshape=(None, None))

        obj(f, "good_counter", "Counter").attrs["count"] = np.uint32(7)
        obj(f, "good_level", "Level").attrs["level"] = np.int64(255)
        g = obj(f, "good_samples", "Samples")
        g.create_dataset("data", data=np.arange(3, dtype=np.float32), chunks=True, maxshape=(None,))
    print(f"wrote mismatch file {args.out}")


if __name__ == "__main__":
    main()
