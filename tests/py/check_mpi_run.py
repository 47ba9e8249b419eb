"""h5py reads a sharded (MPI) simulation run as one world, knowing nothing of MPI.

Usage: check_mpi_run.py RUN CLOUDS PARTICLES

Through the run file alone: the index holds every cloud and probe (ids 1 .. 3*CLOUDS), each
cloud's entity group (an external link into its rank's shard) holds its particles, and every
table is stacked across the shards with one row per entity, whose `entity` column agrees with
the index. Then each value read through the run file is compared with the same value read from
the shard files directly (their committed slots). Prints `ok <n> checks` or raises.
"""
import sys

import h5py
import numpy as np

run, clouds, particles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
checks = 0


def check(what, ok):
    global checks
    if not ok:
        raise SystemExit(f"FAILED: {what}")
    checks += 1


with h5py.File(run, "r") as f:
    ecs = f["ecs"]
    tick = int(ecs.attrs["tick"])
    ranks = int(ecs["mpi"].attrs["ranks"])
    gen = int(ecs["mpi"].attrs["generation"])
    check("ranks >= 1", ranks >= 1)
    index = ecs["index"][:]
    check("index = 1 .. 3K", list(index) == list(range(1, 3 * clouds + 1)))
    total = 0
    for k in range(clouds):
        cid = 3 * k + 1
        g = ecs[f"entities/0/{cid}"]
        check(f"cloud {k} index", int(g.attrs["Cloud.index"]) == k)
        pos = g["Particles.positions"][:]
        check(f"cloud {k} positions shape", pos.ndim == 2 and pos.shape[1] == 3)
        total += pos.shape[0]
    check("every particle", total == particles)
    shard_rows = {}
    for tag, rows in [("Name", 3 * clouds), ("Counters", clouds), ("CloudStats", clouds),
                      ("Probe", 2 * clouds), ("ProbeReading", 2 * clouds), ("RngState", clouds),
                      ("ChildOf", 2 * clouds)]:
        t = ecs[f"tables/{tag}"]
        ids = t["entity"][:]
        check(f"{tag}: {rows} rows", len(ids) == rows)
        check(f"{tag}: ids in the index", set(ids) <= set(index))
        for col in t:
            check(f"{tag}/{col}: rows", t[col].shape[0] == rows)
    check("Step resource", int(ecs["resources/Step"].attrs["step"]) >= 0)

    # The same values read from the shards themselves (the slot holding the common tick).
    def slot_at_tick(shard):
        for s in ("a", "b"):
            try:
                with h5py.File(f"{shard}.{s}", "r") as sf:
                    if int(sf["ecs"].attrs["tick"]) == tick:
                        return f"{shard}.{s}"
            except OSError:
                pass
        raise SystemExit(f"FAILED: no slot of {shard} at tick {tick}")

    stacked = {tag: {c: ecs[f"tables/{tag}/{c}"][:] for c in ecs[f"tables/{tag}"]}
               for tag in ("Counters", "ProbeReading")}
    offset = {tag: 0 for tag in stacked}
    for r in range(ranks):
        with h5py.File(slot_at_tick(f"{run}.g{gen}.r{r}"), "r") as sf:
            for cid in sf["ecs/entities/0"] if "entities" in sf["ecs"] else []:
                a = sf[f"ecs/entities/0/{cid}/Particles.positions"][:]
                b = ecs[f"entities/0/{cid}/Particles.positions"][:]
                check(f"cloud {cid} positions as in rank {r}'s shard", np.array_equal(a, b))
            for tag, cols in stacked.items():
                if f"ecs/tables/{tag}" not in sf:
                    continue
                n = sf[f"ecs/tables/{tag}/entity"].shape[0]
                for c, v in cols.items():
                    mine = sf[f"ecs/tables/{tag}/{c}"][:]
                    check(f"{tag}/{c} rows of rank {r}",
                          np.array_equal(v[offset[tag]:offset[tag] + n], mine))
                offset[tag] += n
print(f"ok {checks} checks")
