"""The oracle of `h5pom check`: open every object of FILE (each once, following hard links, as
h5py's visititems does), read every attribute and every dataset in full.

Prints `readable` and exits 0, or prints the first object that failed and why and exits 1.
"""

import sys

import h5py


def read_attrs(obj):
    for name in obj.attrs.keys():
        obj.attrs[name]


def main(path):
    where = "/"
    try:
        with h5py.File(path, "r") as f:
            read_attrs(f)
            names = []
            # Every object reachable by hard links, each once.
            f.visit(names.append)
            for name in names:
                where = "/" + name
                obj = f[name]
                read_attrs(obj)
                if isinstance(obj, h5py.Dataset) and obj.shape is not None:
                    obj[()]
    except Exception as e:  # noqa: BLE001 (any failure is the answer)
        print(f"{where}: {type(e).__name__}: {e}")
        return 1
    print("readable")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
