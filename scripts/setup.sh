#!/usr/bin/env bash
# Installs what h5pom needs that a fresh Debian + Rust machine lacks, part by part:
#
#   build    .venv/ with cmake >= 3.26, which builds the bundled HDF5 (Debian 12's apt cmake
#            is 3.25). All that `cargo build` and `make run` need.
#   readers  h5py, hdf5plugin, numpy in .venv/: the reference readers of the interop tests
#            (and of examples/sim/plot.py).
#   h5dump   Debian's hdf5-tools, used by the interop tests (installed with apt when root).
#   plot     matplotlib in .venv/, for examples/sim/plot.py.
#   bench    adios2 in .venv/, for benches/history_writers.py (the ADIOS2 BP5 row).
#   mpi      Open MPI (mpirun, mpicc, headers) and libclang, for the `mpi` feature's bindings
#            (installed with apt when root). Neither `make run` nor `make test` needs it.
#   phdf5    Debian's parallel HDF5 (libhdf5-openmpi-dev), for benches/mpi_flush.sh only (the
#            comparison with collective parallel HDF5); nothing else uses it.
#
# Usage: scripts/setup.sh PART...   (the Makefile's setup targets name the parts they need)
# Idempotent and quick when a part is present: each Python part leaves a stamp in .venv/ named
# after the hash of its requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -gt 0 ] || { echo "usage: scripts/setup.sh build|readers|h5dump|plot|bench|mpi|phdf5..." >&2; exit 2; }

# pip-installs scripts/requirements-<part>.txt into .venv unless its stamp is there.
python_part() {
  local reqs="scripts/requirements-$1.txt"
  local stamp=".venv/.h5pom-$1-$(sha256sum "$reqs" | cut -c1-16)"
  [ -f "$stamp" ] && return
  echo "setup: installing $(tr '\n' ' ' < "$reqs")into .venv" >&2
  if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    python3 -m venv --clear .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$reqs"
  rm -f ".venv/.h5pom-$1-"*
  touch "$stamp"
}

h5dump_part() {
  command -v h5dump >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing hdf5-tools (h5dump) with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq hdf5-tools >/dev/null
  else
    echo "setup: h5dump not found and not root: install Debian's hdf5-tools (the tests need it)" >&2
    exit 1
  fi
}

mpi_part() {
  if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 \
    && { ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; }; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Open MPI and libclang with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev libclang-dev >/dev/null
  else
    echo "setup: the mpi feature needs Open MPI and libclang: install Debian's openmpi-bin," \
      "libopenmpi-dev and libclang-dev" >&2
    exit 1
  fi
}

phdf5_part() {
  [ -f /usr/include/hdf5/openmpi/hdf5.h ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing parallel HDF5 (libhdf5-openmpi-dev) with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends libhdf5-openmpi-dev >/dev/null
  else
    echo "setup: the parallel HDF5 comparison needs Debian's libhdf5-openmpi-dev" >&2
    exit 1
  fi
}

for part in "$@"; do
  case "$part" in
    build | readers | plot | bench) python_part "$part" ;;
    h5dump) h5dump_part ;;
    mpi) mpi_part ;;
    phdf5) phdf5_part ;;
    *) echo "setup: unknown part '$part' (build, readers, h5dump, plot, bench, mpi, phdf5)" >&2; exit 2 ;;
  esac
done
