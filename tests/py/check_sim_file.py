"""Checks an output file of examples/sim with h5py against what the simulation reported.

Usage: check_sim_file.py SIM_H5 EXPECT_JSON

EXPECT_JSON (written by tests/sim_resume.rs): step, time_bits (float64 bits), particles,
ticks_logged, and per cloud: index, particles, kinetic_energy_bits (float64 bits) and first
(float32 bits of the first particle's x, y, z, vx, vy, vz).

Everything is found by the layout of docs/FORMAT.md ("ECS layout"), not by the Rust types.
Exits 1 with one line per mismatch on stderr; prints "ok: N checks" otherwise.
"""

import json
import sys

import h5py
import hdf5plugin  # noqa: F401  (registers the LZ4 and Zstd filters)
import numpy as np

failures = []
checks = 0


def check(what, got, want):
    global checks
    checks += 1
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")


def f32_bits(x):
    return int(np.float32(x).view(np.uint32))


def f64_bits(x):
    return int(np.float64(x).view(np.uint64))


def main():
    path, expect_path = sys.argv[1], sys.argv[2]
    with open(expect_path) as f:
        want = json.load(f)
    with h5py.File(path, "r") as f:
        ecs = f["ecs"]
        check("/ecs@layout-version", int(ecs.attrs["layout-version"]), 4)
        res = ecs["resources"]
        check("Step.step", int(res["Step"].attrs["step"]), want["step"])
        check("Clock.time bits", f64_bits(res["Clock"].attrs["time"]), want["time_bits"])
        params = res["Params"].attrs
        check("Params.particles", int(params["particles"]), want["particles"])
        for name in ["seed_0", "seed_1", "seed_2", "seed_3", "word_pos_hi", "word_pos_lo"]:
            col = ecs["tables/RngState"][name]
            check(f"RngState.{name} is a uint64 column", col.dtype, np.uint64)

        # Cloud entities: groups with the Particles component (group storage).
        clouds = {}
        for shard in ecs["entities"].values():
            for eid, g in shard.items():
                check(f"entity {eid} loader-key", g.attrs["loader-key"], "ecs-entity")
                if "Particles" in g.attrs:
                    clouds[int(g.attrs["Cloud.index"])] = (int(eid), g)
        check("clouds found", sorted(clouds), [c["index"] for c in want["clouds"]])

        tables = ecs["tables"]
        stats = tables["CloudStats"]
        ke_by_id = dict(zip(stats["entity"][:].tolist(), stats["kinetic_energy"][:].tolist()))
        total = 0
        for c in want["clouds"]:
            eid, g = clouds[c["index"]]
            pos = g["Particles.positions"]
            vel = g["Particles.velocities"][:]
            ids = g["ParticleIds.ids"][:]
            check(f"cloud {c['index']} positions dtype", pos.dtype, np.float32)
            check(f"cloud {c['index']} shape", pos.shape, (c["particles"], 3))
            check(f"cloud {c['index']} ids", len(ids), c["particles"])
            total += len(ids)
            first = [f32_bits(x) for x in list(pos[0, :]) + list(vel[0, :])]
            check(f"cloud {c['index']} first particle bits", first, c["first"])
            # The stored kinetic energy is exactly what the simulation reported...
            check(f"cloud {c['index']} CloudStats.kinetic_energy bits",
                  f64_bits(ke_by_id[eid]), c["kinetic_energy_bits"])
            # ...and agrees with the velocities in the file.
            mass = float(g.attrs["Cloud.mass"])
            v2 = (vel.astype(np.float64) ** 2).sum()
            recomputed = 0.5 * mass * v2
            checks_ok = abs(recomputed - ke_by_id[eid]) <= 1e-5 * abs(recomputed)
            check(f"cloud {c['index']} kinetic energy from velocities ~ stored", checks_ok, True)
        check("particles in clouds", total, want["particles"])

        # Probes are children of clouds (ChildOf table) and carry readings.
        child_of = tables["ChildOf"]
        parents = set(child_of["parent"][:].tolist())
        check("probe parents are clouds", parents <= {eid for eid, _ in clouds.values()}, True)
        readings = tables["ProbeReading"]
        check("probe readings at the final step",
              set(readings["step"][:].tolist()), {want["step"]})
        names = [n.decode() if isinstance(n, bytes) else n for n in tables["Name"]["name"][:]]
        check("cloud names", sorted(n for n in names if "probe" not in n),
              [f"cloud-{c['index']}" for c in want["clouds"]])

        # The run log: one row per tick (and maybe one for the final flush).
        log = f["run_log"]
        check("run_log loader-key", log.attrs["loader-key"], "SimRunLog")
        rows = len(log["step"])
        check("run_log rows", rows in (want["ticks_logged"], want["ticks_logged"] + 1), True)
        pos = clouds[want["clouds"][0]["index"]][1]["Particles.positions"]
        check("positions filters", sorted(pos._filters), sorted(want["filters"]))
        check("run_log flush times are non-negative", bool((log["flush_seconds"][:] >= 0).all()),
              True)

    if failures:
        for line in failures:
            print(line, file=sys.stderr)
        sys.exit(1)
    print(f"ok: {checks} checks")


main()
