"""Polls a file that the simulation example is writing, the way a live viewer would.

Usage: live_reader.py <file> <done-marker>

The reader protocol (docs/FORMAT.md, "Readers while writing"): open the committing link
(<file>) with h5py as usual (HDF5's default file locking on); if the open fails because the
file is locked (the writer has just started rewriting that slot) or because the link changed
during the open (a commit), retry. While the file is
open, the writer cannot touch it (it waits for the shared lock to be released), so what is
read is one complete committed tick.

Each read checks that the tick (/ecs@tick) never goes back, and that the file is one tick:
the Step resource, every probe reading's step and each cloud's stored kinetic energy
(recomputed from the stored velocities) agree. Any other error is a failure (exit 1). When
<done-marker> exists the writer has finished: one last read, then a summary line
(`reads=… lock_retries=… distinct_ticks=… last_tick=… last_step=…`) is printed.
"""

import os
import sys
import time

import h5py
import numpy as np


def fail(msg):
    print(f"live reader: {msg}", file=sys.stderr)
    sys.exit(1)


def is_transient(e):
    """The two open errors of the protocol that mean "retry": the slot is locked (the writer
    started rewriting it just after the link was read), or the link was switched to the
    other slot between libhdf5's open and its check of the path (a commit happened)."""
    text = str(e)
    return (isinstance(e, BlockingIOError) or "unable to lock file" in text
            or "errno = 11" in text or "st_ino or st_dev fields changed" in text)


def read_once(f):
    ecs = f["ecs"]
    tick = int(ecs.attrs["tick"])
    if "resources" not in ecs or "Step" not in ecs["resources"]:
        return tick, None  # the empty world committed at creation
    step = int(ecs["resources"]["Step"].attrs["step"])
    tables = ecs["tables"]
    readings = tables["ProbeReading"]["step"][:]
    if len(readings) and not np.all(readings == step):
        fail(f"tick {tick}: Step {step} but probe readings at steps {sorted(set(readings.tolist()))}")
    stats = tables["CloudStats"]
    ke = dict(zip(stats["entity"][:].tolist(), stats["kinetic_energy"][:].tolist()))
    for shard in ecs["entities"].values():
        for eid, g in shard.items():
            if "Particles" not in g.attrs:
                continue
            vel = g["Particles.velocities"][:].astype(np.float64)
            recomputed = 0.5 * float(g.attrs["Cloud.mass"]) * (vel ** 2).sum()
            stored = ke[int(eid)]
            if abs(recomputed - stored) > 1e-5 * abs(recomputed):
                fail(f"tick {tick}: cloud {eid} kinetic energy {stored} but velocities give {recomputed}")
    return tick, step


def main():
    path, done = sys.argv[1:3]
    reads = retries = 0
    last_tick = -1
    ticks = set()
    steps = set()
    start = time.monotonic()
    while True:
        finished = os.path.exists(done)
        if not os.path.lexists(path):
            if finished:
                fail("the writer finished but the file does not exist")
            time.sleep(0.001)
            continue
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            if is_transient(e):
                retries += 1
                time.sleep(0.0005)
                continue
            fail(f"open failed: {e!r}")
        try:
            with f:
                tick, step = read_once(f)
        except Exception as e:  # noqa: BLE001 - any read error is a failure of the protocol
            fail(f"read failed after {reads} reads: {e!r}")
        if tick < last_tick:
            fail(f"tick went back from {last_tick} to {tick}")
        last_tick = tick
        ticks.add(tick)
        if step is not None:
            steps.add(step)
        reads += 1
        if finished:
            break
        if time.monotonic() - start > 600:
            fail("the writer did not finish within 600 s")
    last_step = max(steps) if steps else -1
    print(f"reads={reads} lock_retries={retries} distinct_ticks={len(ticks)} "
          f"last_tick={last_tick} last_step={last_step}")


if __name__ == "__main__":
    main()
