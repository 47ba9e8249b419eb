#!/usr/bin/env python3
"""Checks the layout of fixed-size array fields with h5py (docs/FORMAT.md, "Fixed-size arrays,
nested structs, enums, entity containers").

Usage: check_field_kinds.py FILE

FILE (written by tests/interop.rs) holds the object group /r with the attribute pos =
[1.5, -2, 3.25] (float32), pose.x = 4.0 and mode = "Running", and the column table /t whose
column pos is [[0, 1, 2], [10, 11, 12]] (float32).
Exits 1 with one line per mismatch on stderr; prints "ok: N checks" otherwise.
"""

import sys

import h5py
import numpy as np

failures = []
checks = 0


def check(what, ok):
    global checks
    checks += 1
    if not ok:
        failures.append(what)


with h5py.File(sys.argv[1], "r") as f:
    pos = f["r"].attrs["pos"]
    check(f"/r@pos is a float32 numpy array of shape (3,), got {pos!r}",
          isinstance(pos, np.ndarray) and pos.dtype == np.float32 and pos.shape == (3,))
    check(f"/r@pos values, got {pos!r}", np.array_equal(pos, np.array([1.5, -2.0, 3.25], np.float32)))
    check("/r@pose.x", f["r"].attrs["pose.x"] == 4.0)
    mode = f["r"].attrs["mode"]
    check(f"/r@mode, got {mode!r}", (mode.decode() if isinstance(mode, bytes) else mode) == "Running")
    col = f["t/pos"]
    check(f"/t/pos shape, got {col.shape}", col.shape == (2, 3))
    check(f"/t/pos dtype, got {col.dtype}", col.dtype == np.float32)
    check("/t/pos values", np.array_equal(col[()], np.array([[0, 1, 2], [10, 11, 12]], np.float32)))

if failures:
    for line in failures:
        print(line, file=sys.stderr)
    sys.exit(1)
print(f"ok: {checks} checks")
