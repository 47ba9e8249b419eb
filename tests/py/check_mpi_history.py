"""The history of a sharded (MPI) run with --history, read through its run file.

Usage: check_mpi_history.py RUN ONE

RUN is the run file of the MPI run, ONE the run file of the same command run as one process.
Through RUN alone, every particle group (each in its rank's history file, linked from the run
file) must hold the same steps, positions and velocities as ONE's; MDAnalysis opens RUN as
H5MD (its first particle group) with every frame equal; every observable is there once with
the same values per step (the ranks' columns side by side); xarray (h5netcdf) opens every
/ecs/history/<Tag> group of RUN with dimensions `step` and `entity` and no phony dimension, and
its last sample, entity by entity, equals ONE's (a sharded run samples every type at every
flush, one process only on change: where both have every step, every sample is compared).
Prints `ok <n> checks` or raises.
"""
import sys
import warnings

import h5py
import numpy as np

warnings.filterwarnings("ignore")
import MDAnalysis as mda  # noqa: E402

run, one = sys.argv[1], sys.argv[2]
checks = 0
with h5py.File(run, "r") as f, h5py.File(one, "r") as g:
    assert sorted(f["particles"]) == sorted(g["particles"]), (list(f["particles"]), list(g["particles"]))
    assert list(f["h5md"].attrs["version"]) == [1, 1]
    for name in g["particles"]:
        for element in ("position", "velocity"):
            for part in ("value", "step"):
                a = f[f"particles/{name}/{element}/{part}"][()]
                b = g[f"particles/{name}/{element}/{part}"][()]
                np.testing.assert_array_equal(a, b, err_msg=f"{name}/{element}/{part}")
                checks += 1
    # Observables: one each (the shards' series side by side), the same values per step.
    assert sorted(f["observables"]) == sorted(g["observables"]), list(f["observables"])
    for name in g["observables"]:
        a, b = f[f"observables/{name}/value"][()], g[f"observables/{name}/value"][()]
        assert a.shape == b.shape, (name, a.shape, b.shape)
        np.testing.assert_array_equal(np.sort(a, axis=-1), np.sort(b, axis=-1), err_msg=name)
        np.testing.assert_array_equal(f[f"observables/{name}/step"][()],
                                      g[f"observables/{name}/step"][()])
        checks += 1
    pos = g["particles/cloud0/position/value"][()]
u = mda.Universe(run, topology_format="MINIMAL", format="H5MD", n_atoms=pos.shape[1],
                 convert_units=False)
assert len(u.trajectory) == pos.shape[0], (len(u.trajectory), pos.shape)
for i, ts in enumerate(u.trajectory):
    np.testing.assert_array_equal(ts.positions, pos[i])
    checks += 1
import xarray as xr  # noqa: E402

with h5py.File(one, "r") as g:
    tags = sorted(g["ecs/history"])
for tag in tags:
    group = f"ecs/history/{tag}"
    a = xr.open_dataset(run, engine="h5netcdf", group=group, phony_dims="access")
    b = xr.open_dataset(one, engine="h5netcdf", group=group, phony_dims="access")
    assert "step" in a.coords, group
    if "entity" not in b.dims:
        a.close()
        b.close()
        continue  # a resource: shard 0's, mirrored (compared through load_at in Rust)
    ia, ib = np.argsort(a["entity"].values), np.argsort(b["entity"].values)
    assert np.array_equal(a["entity"].values[ia], b["entity"].values[ib]), group
    for name, var in b.data_vars.items():
        if var.dims != ("step", "entity"):
            continue
        assert a[name].dims == ("step", "entity"), (group, name, a[name].dims)
        x, y = a[name].values[:, ia], var.values[:, ib]
        if x.shape == y.shape:
            assert np.array_equal(x, y), (group, name)
        else:
            assert np.array_equal(x[-1], y[-1]), (group, name, "last sample")
        checks += 1
    a.close()
    b.close()
print(f"ok {checks} checks")
