"""Holds the file a running simulation writes open for seconds, as a notebook would, and
checks that the writer does not wait for it and that what it holds stays one tick.

Usage: hold_reader.py <file> <seconds>

Waits until the file has committed tick 2 or later, opens it with h5py (retrying the two
transient open errors of docs/FORMAT.md, "Readers while writing"), reads one tick (checked as
live_reader.py checks it) and a digest of every dataset, then keeps the file open for
<seconds>. Before closing, it reads the held file again (same tick, same step, same digest:
the writer did not touch it) and opens the link a second time to see how far the writer got
meanwhile. Prints `held_tick=… held_step=… tick_at_release=… held_for=…`; exit 1 on any
inconsistency.
"""

import hashlib
import sys
import time

import h5py
import numpy as np

from live_reader import fail, is_transient, read_once


def open_link(path, deadline):
    while True:
        try:
            return h5py.File(path, "r")
        except (OSError, FileNotFoundError) as e:
            if time.monotonic() > deadline:
                fail(f"could not open {path}: {e!r}")
            if not (is_transient(e) or isinstance(e, FileNotFoundError)
                    or "unable to open file" in str(e)):
                fail(f"open failed: {e!r}")
            time.sleep(0.001)


def digest(f):
    h = hashlib.sha256()

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.startswith("ecs/"):
            h.update(name.encode())
            data = np.asarray(obj[()])
            # Variable-length strings read as Python objects: hash their values, not pointers.
            h.update(repr(data.tolist()).encode() if data.dtype == object else data.tobytes())

    f.visititems(visit)
    return h.hexdigest()


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + 600
    while True:
        f = open_link(path, deadline)
        tick, step = read_once(f)
        if tick >= 2 and step is not None:
            break
        f.close()
        time.sleep(0.01)
    before = digest(f)
    held = time.monotonic()
    time.sleep(seconds)
    tick2, step2 = read_once(f)
    if (tick2, step2) != (tick, step):
        fail(f"the held file changed from tick {tick} step {step} to tick {tick2} step {step2}")
    if digest(f) != before:
        fail(f"the held file's datasets changed while it was held (tick {tick})")
    g = open_link(path, deadline)
    now = int(g["ecs"].attrs["tick"])
    g.close()
    held_for = time.monotonic() - held
    f.close()
    print(f"held_tick={tick} held_step={step} tick_at_release={now} held_for={held_for:.2f}")


main()
