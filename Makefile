# The two quick-start commands: `make run` (the main job) and `make test` (all tests).
# Both install what is missing first (scripts/setup.sh), so a fresh machine needs nothing else.
CARGO ?= cargo
export CMAKE := $(CURDIR)/.venv/bin/cmake
export H5POM_PYTHON := $(CURDIR)/.venv/bin/python

.PHONY: setup run test lint bench

setup:
	@scripts/setup.sh

run: setup
	$(CARGO) run --release --example sim

test: setup
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

bench: setup
	$(CARGO) bench
