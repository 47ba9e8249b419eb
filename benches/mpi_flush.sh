#!/usr/bin/env bash
# 1 vs 2 MPI ranks on this machine: the simulation's flush with h5pom (sharded run: each rank
# its shard, rank 0 the run file) and the same arrays written collectively with parallel HDF5
# (benches/mpi/phdf5_flush.c, Debian's libhdf5-openmpi 1.10.8), uncompressed and
# shuffle+deflate-1. Strong scaling: PARTICLES in all; weak: PARTICLES per rank.
#
# Usage: benches/mpi_flush.sh [PARTICLES [TICKS [RUNS]]]   (default 1000000 20 3)
# Installs Open MPI, libclang and libhdf5-openmpi-dev with apt when root (scripts/setup.sh).
# Prints one line per measurement: tool ranks particles filter, flush p50 (and h5pom's
# commit p50 and run-file p50 on rank 0). Run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build mpi phdf5
P=${1:-1000000}; T=${2:-20}; RUNS=${3:-3}
cargo build --release --example sim --example mpi_agree --features mpi --quiet
agree=target/release/examples/mpi_agree
mpicc -O2 -I/usr/include/hdf5/openmpi benches/mpi/phdf5_flush.c \
  -L/usr/lib/x86_64-linux-gnu/hdf5/openmpi -lhdf5 -o target/release/phdf5_flush
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sim() { # ranks particles filter
  local out
  out=$(mpirun -np "$1" --oversubscribe target/release/examples/sim --particles "$2" --clouds 4 \
    --ticks "$T" --threads $((2 / $1)) --compression "$3" --out "$dir/s.h5" --quiet)
  local flush commit
  flush=$(grep '^flush time' <<<"$out" | sed 's/.*p50 \([0-9.]* [a-z]*\).*/\1/')
  commit=$(grep '^commit' <<<"$out" | sed 's/.*p50 \([0-9.]* [a-z]*\) across.*run file p50 \([0-9.]* [a-z]*\).*own flush p50 \([0-9.]* [a-z]*\).*/commit \1 (run file \2), slowest rank'"'"'s own flush \3/' || true)
  echo "h5pom  ranks=$1 particles=$2 filter=$3 flush_p50=$flush ${commit:-}"
  rm -rf "$dir"/s.h5*
}
for run in $(seq "$RUNS"); do
  echo "# run $run (load $(cut -d' ' -f1-3 /proc/loadavg))"
  mpirun -np 2 --oversubscribe "$agree"
  for filter in none deflate:1; do
    c=${filter%%:*}
    sim 1 "$P" "$filter"
    sim 2 "$P" "$filter"
    sim 2 $((2 * P)) "$filter"
    mpirun -np 1 target/release/phdf5_flush "$dir/p.h5" "$P" "$T" "$c"
    mpirun -np 2 --oversubscribe target/release/phdf5_flush "$dir/p.h5" "$P" "$T" "$c"
    mpirun -np 2 --oversubscribe target/release/phdf5_flush "$dir/p.h5" $((2 * P)) "$T" "$c"
    rm -f "$dir/p.h5"
  done
done
