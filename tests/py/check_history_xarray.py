"""Opens every /ecs/history/<Tag> group of a run file with xarray (engine h5netcdf), through
the run file's mirrors of its history file, and checks it against what h5py reads from the
history file itself: named dimensions only (no phony ones), the step coordinate, and the
values of every variable. Prints one JSON line of what it saw."""
import json
import sys

import h5py
import numpy as np
import xarray as xr

path, history = sys.argv[1], sys.argv[2]
seen = {}
with h5py.File(path, "r") as f:
    assert f["ecs/history"].attrs["mirror-of"] == history.rsplit("/", 1)[-1]
with h5py.File(history, "r") as f:
    tags = list(f["ecs/history"].keys())
    raw = {}
    for tag in tags:
        g = f["ecs/history"][tag]
        raw[tag] = {name: g[name][()] for name in g if isinstance(g[name], h5py.Dataset)}

for tag in tags:
    ds = xr.open_dataset(path, engine="h5netcdf", group=f"ecs/history/{tag}",
                         phony_dims="access")
    dims = sorted(ds.sizes)
    assert not any(d.startswith("phony") for d in dims), (tag, dims)
    assert "step" in ds.coords, (tag, list(ds.coords))
    np.testing.assert_array_equal(ds["step"].values, raw[tag]["step"])
    for name, var in ds.variables.items():
        want = raw[tag][name]
        got = var.values
        if want.dtype == object:
            want = np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else b)(want)
            got = got.astype(str)
        if got.dtype.kind == "f":
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_array_equal(np.nan_to_num(got), np.nan_to_num(want))
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{tag}/{name}")
        if var.ndim == 2:
            assert var.dims == ("step", "entity"), (tag, name, var.dims)
    seen[tag] = {"dims": {d: int(n) for d, n in ds.sizes.items()}, "vars": sorted(ds.data_vars)}
    ds.close()
print(json.dumps(seen, sort_keys=True))
