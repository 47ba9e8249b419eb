"""The sim's --history output read by the tools of the field. MDAnalysis opens the run file as
H5MD (first particle group, every frame, box present) with positions and velocities equal to
what h5py reads; xarray (h5netcdf) opens every /ecs/history/<Tag> group (and every entity's
series group) of the run file, with the values h5py reads from the history file.
Prints one JSON line."""
import json
import sys
import warnings

import h5py
import numpy as np
import xarray as xr

warnings.filterwarnings("ignore")
import MDAnalysis as mda  # noqa: E402

path, history = sys.argv[1], sys.argv[2]
out = {}
with h5py.File(path, "r") as f:
    groups = sorted(f["particles"])
    pos = f["particles/cloud0/position/value"][()]
    vel = f["particles/cloud0/velocity/value"][()]
    steps = f["particles/cloud0/position/step"][()]
    edges = f["particles/cloud0/box/edges/value"][()]
    ke = f["observables/kinetic_energy/value"][()]
    tags = sorted(f["ecs/history"])
    assert list(f["h5md"].attrs["version"]) == [1, 1]
u = mda.Universe(path, topology_format="MINIMAL", format="H5MD", n_atoms=pos.shape[1],
                 convert_units=False)
assert len(u.trajectory) == pos.shape[0], (len(u.trajectory), pos.shape)
for i, ts in enumerate(u.trajectory):
    np.testing.assert_array_equal(ts.positions, pos[i])
    np.testing.assert_array_equal(ts.velocities, vel[i])
    np.testing.assert_allclose(ts.dimensions[:3], edges[i])
    assert ts.data["step"] == steps[i]
with h5py.File(history, "r") as f:
    xgroups = [f"ecs/history/{t}" for t in tags]
    xgroups += [f"ecs/history/{t}/{e}" for t in tags for e in f["ecs/history"][t]
                if isinstance(f["ecs/history"][t][e], h5py.Group)]
for group in xgroups:
    ds = xr.open_dataset(path, engine="h5netcdf", group=group, phony_dims="access")
    assert "step" in ds.coords, group
    with h5py.File(history, "r") as f:
        for name, var in ds.variables.items():
            assert not any(d.startswith("phony") for d in var.dims), (group, name, var.dims)
            want = f[group][name][()]
            if want.dtype == object:
                continue
            np.testing.assert_array_equal(np.nan_to_num(var.values), np.nan_to_num(want),
                                          err_msg=f"{group}/{name}")
    ds.close()
out_groups = len(xgroups)
out = {
    "groups": groups,
    "frames": int(pos.shape[0]),
    "steps": [int(s) for s in steps],
    "observable_shape": list(ke.shape),
    "tags": tags,
    "xarray_groups": out_groups,
}
print(json.dumps(out))
