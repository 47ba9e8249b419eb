#!/usr/bin/env python3
"""Check a file written by h5pom-rs against an expectation manifest, with h5py only.

This is an independent reader of the h5pom layout (README "What maps to what",
H5POM-LAYOUT.md): it knows the conventions (loader-key, None and date markers, list and
dict families, hard links, chunked resizable datasets, the format-version attribute) and
checks every value bit for bit. Every group's attributes and links must be exactly the
expected ones: a stray attribute or link is an error too.

Manifest (JSON, written by tests/interop.rs):
  {"format_version": 1, "root": GROUP}
  GROUP  = {"kind": "object", "tag": str|null, "attrs": {name: ATTR}, "links": {name: LINK}}
         | {"kind": "object", "same_as": "/abs/path"}          (a hard link)
  ATTR   = {"kind": "scalar", "dtype": "int16"|…|"float64"|"bool"|"str", "value"|"bits": …}
         | {"kind": "none"} | {"kind": "date"|"datetime", "value": [ints]}
         | {"kind": "list", "items": [ATTR]} | {"kind": "dict", "items": {key: ATTR}}
  LINK   = GROUP | {"kind": "absent"}
         | {"kind": "dataset", "dtype": str, "shape": [ints], "values": [ints]}
           (float values as their IEEE bits, in C order)
         | {"kind": "object_list", "items": [GROUP]} | {"kind": "object_dict", "items": {key: GROUP}}

Exits 1 listing every mismatch; prints "checked N values in FILE" on success.
"""

import argparse
import json
import sys

import h5py
import numpy as np

UINT_OF_SIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}


class Checker:
    def __init__(self, f):
        self.f = f
        self.checked = 0
        self.errors = []

    def expect(self, cond, where, msg):
        self.checked += 1
        if not cond:
            self.errors.append(f"{where}: {msg}")
        return cond

    # ---- attributes -------------------------------------------------------------------

    def attr_info(self, grp, name):
        aid = grp.attrs.get_id(name)
        return aid.dtype, aid.shape

    def read_attr(self, grp, name):
        return grp.attrs[name]

    def check_marker(self, grp, where, name, marker, seen):
        mname = name + "-type"
        seen.add(mname)
        if not self.expect(mname in grp.attrs, where, f"missing marker attribute {mname!r}"):
            return
        dt, shape = self.attr_info(grp, mname)
        info = h5py.check_string_dtype(dt)
        self.expect(
            info is not None and info.length is None and info.encoding == "utf-8",
            where,
            f"{mname!r} should be a variable-length UTF-8 string, is {dt!r} {info}",
        )
        self.expect(shape == (), where, f"{mname!r} should be scalar, has shape {shape}")
        val = self.read_attr(grp, mname)
        self.expect(val == marker, where, f"{mname!r} = {val!r}, expected {marker!r}")

    def check_attr(self, grp, name, spec, seen):
        where = f"{grp.name}@{name}"
        kind = spec["kind"]
        if kind == "list":
            cname = name + "-count"
            self.check_attr(grp, cname, {"kind": "count", "value": len(spec["items"])}, seen)
            for i, item in enumerate(spec["items"]):
                self.check_attr(grp, f"{name}-{i}", item, seen)
            return
        if kind == "dict":
            for key, item in spec["items"].items():
                self.check_attr(grp, f"{name}-{key}", item, seen)
            return
        seen.add(name)
        if not self.expect(name in grp.attrs, where, "attribute missing"):
            return
        dt, shape = self.attr_info(grp, name)
        val = self.read_attr(grp, name)
        if kind == "count":
            self.expect(dt.kind in "iu" and shape == (), where, f"count must be a scalar int, is {dt} {shape}")
            self.expect(int(val) == spec["value"], where, f"count = {val}, expected {spec['value']}")
            self.expect(name + "-type" not in grp.attrs, where, "a count must not have a -type marker")
        elif kind == "none":
            self.expect(dt.kind in "iu" and shape == (), where, f"None must be stored as scalar int 0, is {dt} {shape}")
            self.expect(dt.kind in "iu" and int(val) == 0, where, f"None must be stored as 0, is {val!r}")
            self.check_marker(grp, where, name, "None", seen)
        elif kind in ("date", "datetime"):
            want = spec["value"]
            self.expect(dt.kind == "i", where, f"{kind} must be a signed int array, is {dt}")
            self.expect(shape == (len(want),), where, f"{kind} must have shape ({len(want)},), has {shape}")
            got = [int(x) for x in np.atleast_1d(val)]
            self.expect(got == want, where, f"{kind} = {got}, expected {want}")
            self.check_marker(grp, where, name, kind, seen)
        elif kind == "scalar":
            self.check_scalar(grp, where, name, dt, shape, val, spec)
            self.expect(name + "-type" not in grp.attrs, where, "a plain value must not have a -type marker")
        else:
            self.expect(False, where, f"manifest: unknown attribute kind {kind!r}")

    def check_scalar(self, grp, where, name, dt, shape, val, spec):
        want_dt = spec["dtype"]
        self.expect(shape == (), where, f"should be a scalar attribute, has shape {shape}")
        if want_dt == "str":
            info = h5py.check_string_dtype(dt)
            self.expect(
                info is not None and info.length is None and info.encoding == "utf-8",
                where,
                f"should be a variable-length UTF-8 string, is {dt!r} {info}",
            )
            self.expect(isinstance(val, str) and val == spec["value"], where, f"= {val!r}, expected {spec['value']!r}")
            return
        if want_dt == "bool":
            self.expect(dt == np.dtype(bool), where, f"dtype {dt}, expected bool (HDF5 enum FALSE/TRUE)")
            self.expect(isinstance(val, np.bool_) and bool(val) == spec["value"], where, f"= {val!r}, expected {spec['value']}")
            return
        want = np.dtype(want_dt)
        if not self.expect(dt == want, where, f"dtype {dt}, expected {want}"):
            return
        if want.kind == "f":
            bits = int(np.asarray(val, dtype=want).view(UINT_OF_SIZE[want.itemsize]))
            self.expect(bits == spec["bits"], where, f"bits {bits:#x} ({val!r}), expected {spec['bits']:#x}")
        else:
            self.expect(int(val) == spec["value"], where, f"= {val!r}, expected {spec['value']}")

    # ---- links ------------------------------------------------------------------------

    def check_group(self, grp, spec, path):
        where = path
        if "same_as" in spec:
            target = spec["same_as"]
            if not self.expect(target in self.f, where, f"hard-link target {target} missing"):
                return
            other = self.f[target]
            self.expect(target != path, where, "manifest: same_as points at itself")
            same_id = grp.id == other.id
            same_addr = h5py.h5o.get_info(grp.id).addr == h5py.h5o.get_info(other.id).addr
            self.expect(same_id and same_addr, where, f"should be a hard link to {target}, is a distinct object")
            return
        attrs_seen, links_seen = set(), set()
        tag = spec.get("tag")
        if tag is not None:
            self.check_attr(grp, "loader-key", {"kind": "scalar", "dtype": "str", "value": tag}, attrs_seen)
        for name, aspec in spec.get("attrs", {}).items():
            self.check_attr(grp, name, aspec, attrs_seen)
        for name, lspec in spec.get("links", {}).items():
            self.check_link(grp, name, lspec, attrs_seen, links_seen)
        extra_attrs = sorted(set(grp.attrs.keys()) - attrs_seen)
        extra_links = sorted(set(grp.keys()) - links_seen)
        self.expect(not extra_attrs, where, f"unexpected attributes {extra_attrs}")
        self.expect(not extra_links, where, f"unexpected links {extra_links}")

    def check_link(self, grp, name, spec, attrs_seen, links_seen):
        path = grp.name.rstrip("/") + "/" + name
        kind = spec["kind"]
        if kind == "absent":
            self.expect(name not in grp, path, "should be absent")
            return
        if kind == "object_list":
            self.check_attr(grp, name + "-count", {"kind": "count", "value": len(spec["items"])}, attrs_seen)
            for i, item in enumerate(spec["items"]):
                self.check_link(grp, f"{name}-{i}", item, attrs_seen, links_seen)
            return
        if kind == "object_dict":
            for key, item in spec["items"].items():
                self.check_link(grp, f"{name}-{key}", item, attrs_seen, links_seen)
            return
        links_seen.add(name)
        if not self.expect(name in grp, path, "link missing"):
            return
        obj = grp[name]
        if kind == "object":
            if self.expect(isinstance(obj, h5py.Group), path, f"should be a group, is {type(obj).__name__}"):
                self.check_group(obj, spec, path)
        elif kind == "dataset":
            if self.expect(isinstance(obj, h5py.Dataset), path, f"should be a dataset, is {type(obj).__name__}"):
                self.check_dataset(obj, spec, path)
        else:
            self.expect(False, path, f"manifest: unknown link kind {kind!r}")

    def check_dataset(self, ds, spec, where):
        want_dt = np.dtype(spec["dtype"])
        shape = tuple(spec["shape"])
        if not self.expect(ds.dtype == want_dt, where, f"dtype {ds.dtype}, expected {want_dt}"):
            return
        if not self.expect(ds.shape == shape, where, f"shape {ds.shape}, expected {shape}"):
            return
        if len(shape) >= 1:
            self.expect(ds.chunks is not None, where, "should be chunked")
            if ds.chunks is not None:
                self.expect(len(ds.chunks) == len(shape) and all(c >= 1 for c in ds.chunks), where, f"bad chunks {ds.chunks}")
            self.expect(ds.maxshape == (None,) * len(shape), where, f"maxshape {ds.maxshape}, expected all None")
        data = ds[()]
        flat = np.asarray(data).reshape(-1)
        if want_dt.kind == "f":
            got = [int(b) for b in flat.view(UINT_OF_SIZE[want_dt.itemsize])]
        else:
            got = [int(v) for v in flat]
        want = spec["values"]
        if len(got) != len(want) or got != want:
            bad = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            self.expect(False, where, f"values differ at flat index {bad}: got {got[bad:bad + 4]}, expected {want[bad:bad + 4]} ({len(got)} vs {len(want)} values)")
        else:
            self.checked += len(got)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", help="the HDF5 file written by h5pom-rs")
    ap.add_argument("manifest", help="the JSON expectations written by the Rust test")
    args = ap.parse_args()
    with open(args.manifest, encoding="utf-8") as fh:
        manifest = json.load(fh)
    with h5py.File(args.file, "r") as f:
        c = Checker(f)
        root_attrs = set()
        version = manifest["format_version"]
        c.check_attr(f, "h5pom-format-version", {"kind": "scalar", "dtype": "uint32", "value": version}, root_attrs)
        writer_ok = "h5pom-writer" in f.attrs and str(f.attrs["h5pom-writer"]).startswith("h5pom-rs ")
        c.expect(writer_ok, "/@h5pom-writer", "should name the writer 'h5pom-rs <version>'")
        root = dict(manifest["root"])
        root.setdefault("attrs", {})
        # The root's format attributes are checked above; mark them as expected.
        attrs_seen, links_seen = set(root_attrs) | {"h5pom-writer"}, set()
        for name, aspec in root["attrs"].items():
            c.check_attr(f, name, aspec, attrs_seen)
        for name, lspec in root.get("links", {}).items():
            c.check_link(f, name, lspec, attrs_seen, links_seen)
        c.expect(not sorted(set(f.attrs.keys()) - attrs_seen), "/", f"unexpected attributes {sorted(set(f.attrs.keys()) - attrs_seen)}")
        c.expect(not sorted(set(f.keys()) - links_seen), "/", f"unexpected links {sorted(set(f.keys()) - links_seen)}")
    if c.errors:
        print(f"{len(c.errors)} mismatches in {args.file}:", file=sys.stderr)
        for e in c.errors:
            print("  " + e, file=sys.stderr)
        sys.exit(1)
    print(f"checked {c.checked} values in {args.file}")


if __name__ == "__main__":
    main()
