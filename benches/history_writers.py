"""Keeping a trajectory: h5pom's history append against the Python writers of the field, side by
side in one run. Each writer stores F frames of positions and velocities of N particles
(float32, N x 3 each), frame by frame as they are produced.

- h5py: appends to [frame, N, 3] datasets chunked one frame per chunk (none, gzip-1 + shuffle,
  LZ4 through hdf5plugin);
- MDAnalysis: H5MDWriter with gzip level 1;
- ADIOS2 (PyPI `adios2`, `make setup-bench`): the BP5 engine with `StatsLevel=0`, one step per
  frame (no compression, as the issue's reference figure);
- h5pom: the simulation example with and without --history (none, deflate:1); the history's
  cost is the extra flush time, its bytes the history file. With deflate, "shared" is the
  default (each array compressed once for the history and the run file), "own encoding" the
  history compressing its frames itself (--no-shared-encoding), as a writer that persists
  nothing else would.

Usage: .venv/bin/python benches/history_writers.py [SIM_BINARY] [N] [F]
(default target/release/examples/sim, 1000000 particles, 20 frames). Prints one table.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import h5py
import hdf5plugin
import numpy as np

warnings.filterwarnings("ignore")
import MDAnalysis as mda  # noqa: E402
from MDAnalysis.coordinates.H5MD import H5MDWriter  # noqa: E402

SIM = sys.argv[1] if len(sys.argv) > 1 else "target/release/examples/sim"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
F = int(sys.argv[3]) if len(sys.argv) > 3 else 20
MB = 1e6


def frames():
    rng = np.random.default_rng(0)
    pos = rng.random((N, 3), dtype=np.float32) * 100
    vel = rng.standard_normal((N, 3), dtype=np.float32)
    for k in range(F):
        pos = (pos + 0.01 * vel) % 100  # each frame computed as the run goes
        yield pos, vel


def h5py_append(path, **filters):
    with h5py.File(path, "w") as f:
        ds = {n: f.create_dataset(n, shape=(0, N, 3), maxshape=(None, N, 3), chunks=(1, N, 3),
                                  dtype="f4", **filters) for n in ("position", "velocity")}
        for k, (p, v) in enumerate(frames()):
            for name, a in (("position", p), ("velocity", v)):
                ds[name].resize(k + 1, axis=0)
                ds[name][k] = a
    return os.path.getsize(path)


def mdanalysis(path):
    u = mda.Universe.empty(N, trajectory=True, velocities=True)
    u.dimensions = [100, 100, 100, 90, 90, 90]
    with H5MDWriter(path, N, compression="gzip", compression_opts=1, positions=True,
                    velocities=True, forces=False, convert_units=False) as w:
        for p, v in frames():
            u.atoms.positions = p
            u.atoms.velocities = v
            w.write(u)
    return os.path.getsize(path)


def adios2_bp5(path):
    import adios2

    adios = adios2.Adios()
    io = adios.declare_io("bench")
    io.set_engine("BP5")
    io.set_parameter("StatsLevel", "0")
    with adios2.Stream(io, path, "w") as s:
        for p, v in frames():
            s.begin_step()
            for name, a in (("position", p), ("velocity", v)):
                s.write(name, a, list(a.shape), [0, 0], list(a.shape))
            s.end_step()
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))


def sim(tmp, history, compression, shared=True):
    out = os.path.join(tmp, f"sim-{history}-{compression}.h5")
    args = [SIM, "--particles", str(N), "--clouds", "4", "--ticks", str(F), "--out", out,
            "--quiet", "--compression", compression] + (["--history"] if history else [])
    if history and not shared:
        args.append("--no-shared-encoding")
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    total_ms = float(re.search(r"flushes\s+\d+ \(([\d.]+) ms total\)", text).group(1))
    side = out + ".history"
    size = os.path.getsize(side) if os.path.exists(side) else 0
    for name in os.listdir(tmp):
        if name.startswith(os.path.basename(out)):
            os.remove(os.path.join(tmp, name))
    return total_ms / 1e3, size


def main():
    raw = F * 2 * N * 3 * 4  # the frames' bytes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw in [("h5py append, none", {}),
                          ("h5py append, gzip-1 + shuffle",
                           {"compression": "gzip", "compression_opts": 1, "shuffle": True}),
                          ("h5py append, LZ4 (hdf5plugin)", dict(hdf5plugin.LZ4()))]:
            t = time.perf_counter()
            size = h5py_append(os.path.join(tmp, "h5py.h5"), **kw)
            rows.append((label, time.perf_counter() - t, size))
        t = time.perf_counter()
        size = mdanalysis(os.path.join(tmp, "mda.h5"))
        rows.append(("MDAnalysis H5MDWriter, gzip-1", time.perf_counter() - t, size))
        try:
            t = time.perf_counter()
            size = adios2_bp5(os.path.join(tmp, "adios.bp"))
            rows.append(("ADIOS2 BP5, StatsLevel=0", time.perf_counter() - t, size))
        except ImportError:
            print("ADIOS2 not installed (make setup-bench): its row is left out")
        for compression, shared in [("none", True), ("deflate:1", True), ("deflate:1", False)]:
            base, _ = sim(tmp, False, compression)
            with_h, size = sim(tmp, True, compression, shared)
            # The sim keeps one more sample than it ticks (the first flush) and four clouds of
            # N/4: the history holds (F + 1) frames of all N particles.
            extra = with_h - base
            label = f"h5pom history append, {compression}"
            if compression != "none":
                label += ", shared" if shared else ", own encoding"
            rows.append((label, extra * F / (F + 1), size * F / (F + 1)))
    print(f"{F} frames x {N:,} particles x (positions + velocities) float32 = {raw / MB:,.0f} MB")
    print(f"{'writer':<34} {'time':>8} {'MB/s':>8} {'stored/frames':>14}")
    for label, secs, size in rows:
        print(f"{label:<34} {secs:>7.2f}s {raw / MB / secs:>8.0f} {size / raw:>14.2f}")


main()
