"""Writes <file> the way a SWMR writer does (libver="latest": superblock version 3), then
kills itself with SIGKILL while the file is open for writing, leaving the superblock's
"open for write" status flags set, as a crashed writer does.

Usage: write_killed_swmr_file.py <file> <tick>
"""

import os
import signal
import sys

import h5py
import numpy as np

path, tick = sys.argv[1], int(sys.argv[2])
f = h5py.File(path, "w", libver="latest")
ecs = f.create_group("ecs")
ecs.attrs["tick"] = np.uint64(tick)
ecs.attrs["layout-version"] = np.uint64(1)
f.swmr_mode = True
f.flush()
os.kill(os.getpid(), signal.SIGKILL)
