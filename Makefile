# One entry point for newcomers and CI: `make run`, `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUF_VERSION := 1.75.0
BUF    := .tools/node_modules/.bin/buf
PROTOS := $(wildcard protos/licensing/v1/*.proto)
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench cluster clean

install: $(STAMP) gen/.stamp

# Dependencies are reinstalled only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Generated code mirrors protos/ in the import path: licensing.v1.licenses_pb2.
gen/.stamp: $(PROTOS) $(STAMP)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	touch gen/licensing/__init__.py gen/licensing/v1/__init__.py
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

run: install
	$(VENV)/bin/licensing dev

test: install
	$(PY) -m pytest -q tests

# Scale-out proof: 3 servers and 2 relays on one PostgreSQL and NATS (also part of `make test`).
cluster: install
	$(PY) -m pytest -q tests/cluster

# Not part of `make test`: throughput and latency against this machine's own ceilings (bench/README.md).
bench: install
	$(PY) -m bench.run

lint: install $(BUF)
	$(BUF) lint
	$(VENV)/bin/ruff check server tests bench
	$(VENV)/bin/mypy

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)

clean:
	rm -rf $(VENV) gen .tools
