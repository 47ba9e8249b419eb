"""A reader holding the run file while the simulation writes it, side by side with no reader.

Each round runs the simulation example for T ticks twice: once alone, once while
tests/py/hold_reader.py opens the file (after tick 2), keeps it open for S seconds (as a
notebook holding `h5py.File("run.h5")` does) and closes it. Reports the wall time of both runs,
their ratio, and how many ticks the writer committed while the reader held the file.

Before the reader bypass (the writer waited for the reader's lock), 200 ticks took 7.6 s with a
6-s reader against 1.7 s alone. Now a held slot is replaced by a copy of the committed one.

Usage: .venv/bin/python benches/reader_hold.py [SIM_BINARY] [TICKS] [SECONDS] [ROUNDS]
(default target/release/examples/sim, 200 ticks, 6 s, 3 rounds; the sim's default particles).
"""

import os
import subprocess
import sys
import tempfile
import time

SIM = sys.argv[1] if len(sys.argv) > 1 else "target/release/examples/sim"
TICKS = sys.argv[2] if len(sys.argv) > 2 else "200"
SECONDS = sys.argv[3] if len(sys.argv) > 3 else "6"
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
HERE = os.path.dirname(os.path.abspath(__file__))
READER = os.path.join(HERE, "..", "tests", "py", "hold_reader.py")


def sim(out):
    start = time.monotonic()
    subprocess.run([SIM, "--quiet", "--ticks", TICKS, "--out", out], check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main():
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'round':>5} {'alone s':>8} {'held s':>8} {'ratio':>6}  reader")
    for r in range(ROUNDS):
        with tempfile.TemporaryDirectory() as d:
            alone = sim(os.path.join(d, "alone.h5"))
            out = os.path.join(d, "held.h5")
            reader = subprocess.Popen([sys.executable, READER, out, SECONDS],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            held = sim(out)
            got, err = reader.communicate()
            if reader.returncode != 0:
                sys.exit(f"reader failed: {err}")
            print(f"{r:>5} {alone:>8.2f} {held:>8.2f} {held / alone:>6.2f}  {got.strip()}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


main()
