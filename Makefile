# The quick-start commands: `make run` (the main job) and `make test` (all tests). Each first
# installs what it needs and is missing (scripts/setup.sh), so a fresh machine needs nothing else.
#
# CMAKE and H5POM_PYTHON come from .cargo/config.toml (scripts/cmake, scripts/python), so `make`
# and a plain `cargo` see the same values; one set in the environment wins for both.
CARGO ?= cargo

.PHONY: setup setup-test setup-plot setup-bench setup-mpi run plot test test-mpi lint bench bench-scaling

# What building needs: .venv with CMake >= 3.26 (for the bundled HDF5).
setup:
	@scripts/setup.sh build

# What the tests need besides: h5py, hdf5plugin and numpy in .venv; h5dump (apt, when root).
setup-test:
	@scripts/setup.sh build readers h5dump

# What examples/sim/plot.py needs: h5py, hdf5plugin, numpy and matplotlib in .venv.
setup-plot:
	@scripts/setup.sh readers plot

# What the Python benchmarks need (benches/*.py): the readers, and adios2 for the ADIOS2 row.
setup-bench:
	@scripts/setup.sh build readers bench

# Open MPI and libclang, for the `mpi` feature (sharded runs); only test-mpi needs them.
setup-mpi:
	@scripts/setup.sh mpi

run: setup
	$(CARGO) run --release --example sim

# Draws sim.h5 (from `make run`) as sim-particles.png and sim-flush.png.
plot: setup-plot
	.venv/bin/python examples/sim/plot.py sim.h5

# Every test, doctests included. The benches (only the [[bench]] targets) are compiled in the
# bench profile so that they cannot rot, but not run: `make bench` runs them.
test: setup-test
	$(CARGO) test --lib --bins --tests --examples
	$(CARGO) test --doc
	$(CARGO) bench --bench '*' --no-run

# The `mpi` feature: the sim under `mpirun -np 2 --oversubscribe` (tests/mpi.rs), lints of the
# h5pom-mpi crate. Installs Open MPI and libclang first (apt, when root).
test-mpi: setup-test setup-mpi
	$(CARGO) test --release --features mpi --test mpi
	$(CARGO) clippy -p h5pom -p h5pom-mpi --features mpi --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p h5pom-mpi --no-deps

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

bench: setup
	$(CARGO) bench

# Scaling curves (sim 10k -> 10M particles, ECS 1k -> 1M entities, 1 and 2 threads): Markdown
# tables on stdout and docs/bench/scaling.png. Long (several minutes); run it on an idle machine.
bench-scaling: setup setup-plot
	.venv/bin/python benches/scaling.py --png docs/bench/scaling.png
