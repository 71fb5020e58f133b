# The two commands of the README: `make serve` (build, then start the whole box — every service
# its own process — on ./renkei-data) and `make test` (build, then cargo test, clippy, ruff, mypy,
# stubtest and pytest). Everything else they need is installed here.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= renkei-data
# Ports of the box: core mTLS = BASE_PORT, core public = +1, J-LIS = +2, NTA = +3 (0 = any free).
BASE_PORT ?= 50051

.PHONY: os-packages serve test install lint bench clean proto

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'maturin>=1.9,<2'

install: $(BIN)/python os-packages
	$(BIN)/pip install -q --no-build-isolation -e '.[test,bench]'

# OS packages the tests drive, installed when missing (CI runs as root on Debian): the portal's
# browser tests use the OS's headless Chromium (never a downloaded browser), with the Japanese
# fonts so the screenshots are readable; the supervised-failover test runs Patroni + etcd.
os-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list | grep -q "Noto Sans CJK" \
		&& command -v patroni >/dev/null && command -v etcd >/dev/null \
		|| (apt-get update && apt-get install -y chromium chromium-driver fonts-noto-cjk patroni etcd-server etcd-client)

# A real S3-compatible object store for the tests of the ledger's tiles in an object store
# (tests/garage_server.py): Garage from crates.io, built once into .tools/ (the features the
# tests use: SQLite metadata, bundled libraries).
GARAGE := .tools/bin/garage
$(GARAGE):
	cargo install garage --version 2.5.0 --locked --root .tools --no-default-features --features bundled-libs,sqlite

serve: install
	$(BIN)/renkei up --dir $(DATA) --demo --base-port $(BASE_PORT)

test: install $(GARAGE)
	cargo test --workspace
	cargo clippy --workspace --all-targets --features python -- -D warnings
	$(BIN)/ruff check pyservice tests bench proto
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest renkei._core --allowlist pyservice/renkei/_core/stubtest.allowlist
	$(BIN)/pytest

lint: install
	cargo clippy --workspace --all-targets --features python -- -D warnings
	$(BIN)/ruff check pyservice tests bench proto
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest renkei._core --allowlist pyservice/renkei/_core/stubtest.allowlist

bench: install
	$(BIN)/python -m bench.micro

# Regenerate pyservice/renkei/_proto/ (committed) from proto/renkei/v1/*.proto.
proto: install
	$(BIN)/python proto/generate.py

clean:
	rm -rf $(VENV) target .tools
