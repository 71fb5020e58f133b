# The two commands of the README: `make serve` (build, then run renkei on ./renkei-data) and
# `make test` (build, then cargo test and pytest). Everything else they need is installed here.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= renkei-data

.PHONY: serve test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'maturin>=1.9,<2'

install: $(BIN)/python
	$(BIN)/pip install -q --no-build-isolation -e '.[test,bench]'

serve: install
	$(BIN)/renkei init --data-dir $(DATA)

test: install
	cargo test --workspace
	cargo clippy --workspace --all-targets --features python -- -D warnings
	$(BIN)/ruff check pyservice tests bench
	$(BIN)/pytest

lint: install
	cargo clippy --workspace --all-targets --features python -- -D warnings
	$(BIN)/ruff check pyservice tests bench

bench: install
	$(BIN)/python -m bench.micro

clean:
	rm -rf $(VENV) target
