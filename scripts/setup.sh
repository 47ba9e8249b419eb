#!/usr/bin/env bash
# Installs everything h5pom's build and tests need that a fresh Debian + Rust machine lacks.
# Idempotent and quick when everything is present; called by `make run` and `make test`.
#
#   - .venv/ : a Python virtual environment with
#       cmake     (>= 3.26, needed to build the bundled HDF5; Debian 12's apt cmake is 3.25),
#       h5py, hdf5plugin, numpy (the reference readers of the interop tests),
#       matplotlib (the simulation's plotting script).
#   - h5dump  : Debian's hdf5-tools, used by the interop tests (installed with apt when root).
set -euo pipefail
cd "$(dirname "$0")/.."

PY_REQS="scripts/requirements.txt"
stamp=".venv/.h5pom-setup-$(sha256sum "$PY_REQS" | cut -c1-16)"

if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv with $(tr '\n' ' ' < "$PY_REQS")" >&2
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$PY_REQS"
  touch "$stamp"
fi

if ! command -v h5dump >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing hdf5-tools (h5dump) with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq hdf5-tools >/dev/null
  else
    echo "setup: h5dump not found and not root: install Debian's hdf5-tools" >&2
    exit 1
  fi
fi
