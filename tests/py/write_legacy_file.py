#!/usr/bin/env python3
"""Write a file laid out the way the original Python h5pom (0.1, 2013, Python 2 + h5py) did.

Conventions (H5POM-LAYOUT.md): an object is a group with a string attribute `loader-key`;
scalar fields are attributes; None is 0 plus `<name>-type` = "None"; dates and datetimes are
int arrays plus `<name>-type` = "date" / "datetime"; lists are `<name>-count` plus `<name>-0`,
`<name>-1`, ... (attributes for scalars, sub-groups for objects); object dicts are sub-groups
`<name>-<key>`; a SubObject that is already in the file is a hard link to its group; arrays are
chunked datasets with maxshape None on every axis. There is no format-version attribute.

Python 2's h5py stored `str` values as fixed-length byte strings (numpy.bytes_): some strings
here are written that way, others as variable-length strings, as a mix of old and newer h5py
writers would leave them. Booleans appear both as numpy bools (HDF5 enum) and as 0/1 ints.

tests/interop.rs loads this file with matching Rust types and asserts every value below.
"""

import argparse

import h5py
import numpy as np


def fixed(s):
    """A fixed-length ASCII string, as Python 2 h5py wrote a `str`."""
    return np.bytes_(s.encode("ascii"))


def none(grp, name, marker_fixed):
    grp.attrs[name] = 0
    grp.attrs[name + "-type"] = fixed("None") if marker_fixed else "None"


def date(grp, name, ymd):
    grp.attrs[name] = np.array(ymd, dtype=np.int64)
    grp.attrs[name + "-type"] = fixed("date")


def datetime(grp, name, parts):
    grp.attrs[name] = np.array(parts, dtype=np.int64)
    grp.attrs[name + "-type"] = "datetime"


def array(grp, name, data):
    grp.create_dataset(name, data=data, chunks=True, maxshape=(None,) * data.ndim)


def pet(grp, name, species, key_fixed=True):
    grp.attrs["loader-key"] = fixed("Pet") if key_fixed else "Pet"
    grp.attrs["name"] = fixed(name) if key_fixed else name
    grp.attrs["species"] = species
    return grp


def person(f, path, p, key_fixed):
    g = f.create_group(path)
    g.attrs["loader-key"] = fixed("Person") if key_fixed else "Person"
    g.attrs["name"] = fixed(p["name"])
    g.attrs["nickname"] = p["nickname"]  # variable-length (unicode)
    g.attrs["age"] = p["age"]  # a Python int: int64
    g.attrs["height"] = p["height"]  # a Python float: float64
    g.attrs["active"] = p["active"]  # a Python bool: HDF5 enum FALSE/TRUE
    g.attrs["legacy_flag"] = np.int64(1 if p["legacy_flag"] else 0)  # a bool stored as an int
    if p["middle_name"] is None:
        none(g, "middle_name", marker_fixed=key_fixed)
    else:
        g.attrs["middle_name"] = fixed(p["middle_name"])
    date(g, "birthday", p["birthday"])
    datetime(g, "registered", p["registered"])
    # ScalarList with a None item.
    g.attrs["scores-count"] = len(p["scores"])
    for i, s in enumerate(p["scores"]):
        if s is None:
            none(g, f"scores-{i}", marker_fixed=True)
        else:
            g.attrs[f"scores-{i}"] = s
    g.attrs["nicknames-count"] = len(p["nicknames"])
    for i, s in enumerate(p["nicknames"]):
        g.attrs[f"nicknames-{i}"] = fixed(s) if i % 2 == 0 else s
    array(g, "position", np.arange(12, dtype=np.float64).reshape(4, 3) * p["scale"])
    array(g, "samples", (np.arange(10, dtype=np.int32) - 5) * 1000)
    array(g, "weights", np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))
    array(g, "empty", np.zeros((0,), dtype=np.int16))
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the HDF5 file to create")
    args = ap.parse_args()
    with h5py.File(args.out, "w") as f:
        joe = person(
            f,
            "joe",
            dict(
                name="Joe", nickname="J\u00f6e", age=25, height=1.82, active=True,
                legacy_flag=True, middle_name=None, birthday=[1980, 5, 17],
                registered=[2013, 1, 2, 3, 4, 5, 678901], scores=[1.5, None, -2.25],
                nicknames=["jo", "joey", "J"], scale=0.5,
            ),
            key_fixed=True,
        )
        # SubObjectList of two pets; the first is also in a dict, the second is the favourite.
        joe.attrs["friends-count"] = 2
        rex = pet(joe.create_group("friends-0"), "Rex", "dog")
        tom = pet(joe.create_group("friends-1"), "Tom", "cat", key_fixed=False)
        joe["favourite"] = tom  # hard link: the original's SubObject to an object already stored
        joe["pets-rex"] = rex  # SubObjectDict item, hard link
        pet(joe.create_group("pets-kitty"), "Kitty", "cat")

        mary = person(
            f,
            "mary",
            dict(
                name="Mary", nickname="M", age=31, height=1.7, active=False,
                legacy_flag=False, middle_name="Ann", birthday=[1982, 12, 1],
                registered=[2013, 6, 30, 23, 59, 59, 0], scores=[], nicknames=[], scale=2.0,
            ),
            key_fixed=False,
        )
        mary.attrs["friends-count"] = 1
        mary["friends-0"] = tom  # shared across objects
        mary["favourite"] = rex

        # A plain group (the original's Folder) holding an object.
        shelter = f.create_group("shelter")
        pet(shelter.create_group("cat"), "Felix", "cat")
    print(f"wrote legacy h5pom file {args.out}")


if __name__ == "__main__":
    main()
