# The two quick-start commands: `make demo` and `make test`. Both set up first (idempotent).
PYTHON ?= python3
export HF_HUB_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False

.PHONY: setup demo test bench

setup:
	@bash scripts/setup.sh

demo: setup
	$(PYTHON) -m embedder demo

test: setup
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) bench/embed.py
