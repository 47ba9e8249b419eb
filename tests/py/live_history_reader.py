"""Polls the history of a simulation that runs with --history, the way a live plot would,
following the protocol of docs/FORMAT.md ("Reading a history while it is written").

Usage: live_history_reader.py <file> <done-marker>

Each poll reads the sidecar's write sequence (<file>.history.seq), opens <file> with h5py,
reads the committed tick (/ecs@tick) and, for the first cloud's particle history, the steps
of the committed samples (tick <= committed tick) and the last committed velocity frame, then
reads the sequence again. A poll whose two readings differ (or are odd while the writer holds
the sequence file's lock) saw an append and is discarded, as is one whose open failed. Kept
polls must show steps that never go back and a committed prefix that never changes. After
<done-marker> appears (the writer finished), every frame a kept poll read is compared with the
same step's frame in the finished file: a partial or torn frame would differ. Prints
`polls=… kept=… discarded=… frames_checked=… last_step=…`; exit 1 on any violation.
"""

import fcntl
import hashlib
import os
import sys
import time

import h5py
import numpy as np

from live_reader import fail


def read_seq(path):
    """(number, live writer?) or None when the file does not exist yet."""
    try:
        with open(path, "rb") as s:
            n = int(s.read().strip() or b"1")
            live = False
            if n % 2 == 1:
                try:
                    fcntl.flock(s, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    fcntl.flock(s, fcntl.LOCK_UN)
                except BlockingIOError:
                    live = True
            return n, live
    except FileNotFoundError:
        return None


def poll(path):
    """(committed steps of cloud 0's first particle group, last frame digest) or None."""
    with h5py.File(path, "r") as f:
        tick = int(f["ecs"].attrs["tick"])
        hist = f["ecs"].get("history")
        if hist is None or "Particles" not in hist:
            return None
        parts = hist["Particles"]
        ids = sorted(k for k in parts if isinstance(parts[k], h5py.Group))
        if not ids:
            return None
        g = parts[ids[0]]
        n = int((g["tick"][()] <= tick).sum())
        if n == 0:
            return None
        steps = g["step"][:n]
        frame = g["velocities"][n - 1]
        return ids[0], steps, hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest()


def main():
    path, done = sys.argv[1:3]
    seq = path + ".history.seq"
    polls = kept = discarded = 0
    prefix = None
    seen = {}  # (entity, step) -> digest of the velocity frame read at that step
    start = time.monotonic()
    while True:
        finished = os.path.exists(done)
        before = read_seq(seq)
        if before is None or before[1]:
            if finished and before is None:
                fail("the writer finished but there is no sequence file")
            time.sleep(0.0005)
            continue
        polls += 1
        try:
            got = poll(path)
        except (OSError, RuntimeError, KeyError, ValueError):
            got = "error"
        after = read_seq(seq)
        if after != before or got == "error":
            discarded += 1
            if finished and got == "error" and after == before:
                fail("the finished file could not be read")
            continue
        kept += 1
        if got is not None:
            eid, steps, frame = got
            if np.any(np.diff(steps) <= 0):
                fail(f"steps not increasing: {steps.tolist()}")
            if prefix is not None:
                if len(steps) < len(prefix[1]) or not np.array_equal(steps[: len(prefix[1])], prefix[1]):
                    fail(f"the committed steps went back or changed: {prefix[1].tolist()[-3:]} "
                         f"then {steps.tolist()[-3:]}")
            prefix = (eid, steps)
            seen[(eid, int(steps[-1]))] = frame
        if finished:
            break
        if time.monotonic() - start > 600:
            fail("the writer did not finish within 600 s")
    checked = 0
    with h5py.File(path, "r") as f:
        parts = f["ecs/history/Particles"]
        for (eid, step), d in seen.items():
            g = parts[eid]
            i = int(np.searchsorted(g["step"][()], step))
            frame = g["velocities"][i]
            if hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest() != d:
                fail(f"entity {eid} step {step}: the frame read live differs from the final one")
            checked += 1
    last = int(prefix[1][-1]) if prefix is not None else -1
    print(f"polls={polls} kept={kept} discarded={discarded} frames_checked={checked} last_step={last}")


main()
