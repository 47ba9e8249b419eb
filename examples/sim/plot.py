"""Draws an output file of examples/sim as PNGs, with h5py (+ hdf5plugin) and matplotlib.

Usage: python examples/sim/plot.py [SIM_H5] [OUT_PREFIX]

Writes OUT_PREFIX-particles.png (x-y projection of every cloud, a random sample of at most
5,000 particles per cloud) and OUT_PREFIX-flush.png (per-tick flush time and tick time from
the run log); for a run with --history also OUT_PREFIX-energy.png (each cloud's kinetic energy
over the steps, read from the history). Defaults: sim.h5, and the file name without .h5.
"""

import sys

import h5py
import hdf5plugin  # noqa: F401  (registers the LZ4 and Zstd filters, for --compression lz4/zstd)
import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_POINTS = 5_000


def clouds(f):
    """(index, name, positions dataset) of every cloud, in index order. See docs/FORMAT.md."""
    names = {}
    if "Name" in f["ecs/tables"]:
        t = f["ecs/tables/Name"]
        for eid, n in zip(t["entity"][:], t["name"][:]):
            names[int(eid)] = n.decode() if isinstance(n, bytes) else n
    found = []
    for shard in f["ecs/entities"].values():
        for eid, g in shard.items():
            if "Particles" in g.attrs:
                found.append((int(g.attrs["Cloud.index"]), names.get(int(eid), eid),
                              g["Particles.positions"]))
    return sorted(found, key=lambda c: c[0])


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "sim.h5"
    prefix = sys.argv[2] if len(sys.argv) > 2 else path.removesuffix(".h5")
    with h5py.File(path, "r") as f:
        step = int(f["ecs/resources/Step"].attrs["step"])
        box = float(f["ecs/resources/Params"].attrs["box_size"])
        rng = np.random.default_rng(0)

        fig, ax = plt.subplots(figsize=(7, 7))
        for index, name, ds in clouds(f):
            n = ds.shape[0]
            rows = np.sort(rng.choice(n, size=min(n, MAX_POINTS), replace=False))
            xy = ds[rows, 0:2]
            ax.scatter(xy[:, 0], xy[:, 1], s=1.5, alpha=0.5, label=f"{name} ({n:,})")
        ax.set_xlim(0, box)
        ax.set_ylim(0, box)
        ax.set_aspect("equal")
        ax.set_title(f"{path}: step {step}, x-y projection")
        ax.legend(markerscale=4, loc="upper right", fontsize="small")
        fig.savefig(f"{prefix}-particles.png", dpi=120, bbox_inches="tight")
        plt.close(fig)

        log = f["run_log"]
        steps = log["step"][:]
        flush_ms = log["flush_seconds"][:] * 1e3
        tick_ms = log["tick_seconds"][:] * 1e3
        mib = log["flush_bytes"][:] / 2**20
        stored = log["flush_stored"][:] / 2**20
        fig, ax = plt.subplots(figsize=(8, 4))
        ticked = tick_ms > 0
        ax.plot(steps[ticked], tick_ms[ticked], label="tick (physics + flush)", lw=1)
        flushed = flush_ms > 0
        ax.plot(steps[flushed], flush_ms[flushed], ".", label="flush", ms=3)
        ax.set_xlabel("step")
        ax.set_ylabel("ms")
        total = flush_ms[flushed].sum() / 1e3
        rate = mib[flushed].sum() / total if total > 0 else 0
        ratio = mib[flushed].sum() / max(stored[flushed].sum(), 1e-9)
        ax.set_title(f"flush: median {np.median(flush_ms[flushed]):.1f} ms, {rate:.0f} MiB/s, "
                     f"compression ratio {ratio:.2f}")
        ax.set_ylim(bottom=0)
        ax.legend()
        fig.savefig(f"{prefix}-flush.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        drew = [f"{prefix}-particles.png", f"{prefix}-flush.png"]
        if "history" in f["ecs"] and "CloudStats" in f["ecs/history"]:
            drew.append(energy(f, prefix, clouds(f)))
    print("wrote " + ", ".join(drew))


def energy(f, prefix, found):
    """Each cloud's kinetic energy over the stored steps (docs/FORMAT.md, "History")."""
    h = f["ecs/history/CloudStats"]
    steps = h["step"][:]
    ids = h["entity"][:]
    present = h["entity-present"][:].astype(bool)
    ke = h["kinetic_energy"][:]
    names = {}
    for shard in f["ecs/entities"].values():
        for eid, g in shard.items():
            if "Cloud.index" in g.attrs:
                names[int(eid)] = f"cloud {int(g.attrs['Cloud.index'])}"
    fig, ax = plt.subplots(figsize=(8, 4))
    for j, eid in enumerate(ids):
        here = present[:, j]
        ax.plot(steps[here], ke[here, j], label=names.get(int(eid), str(eid)), lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("kinetic energy")
    ax.set_title("kinetic energy per cloud, from the history")
    ax.legend(fontsize="small")
    out = f"{prefix}-energy.png"
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


main()
