# The two quick-start commands: `make demo` and `make test`. Both set up first (idempotent).
PYTHON ?= python3
export HF_HUB_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False

.PHONY: setup demo test lint wheel-check bench llama-cpp

setup:
	@bash scripts/setup.sh

# the main job: index the built-in demo corpus (incrementally) and serve the app on 127.0.0.1:8501
demo: setup
	$(PYTHON) -m app serve

test: setup
	$(PYTHON) -m pytest -q

# the lint gate CI runs before the suite: pyflakes, pycodestyle, import order, bugbear, pyupgrade,
# complexity <= 12 (settings in pyproject.toml)
lint: setup
	$(PYTHON) -m ruff check .

# CI: build the wheel, `pip install` it into a fresh venv and serve the demo corpus with `linqrag serve` from
# there (about 2 minutes; scripts/wheel_check.py says what it checks)
wheel-check: setup
	$(PYTHON) scripts/wheel_check.py

bench: setup
	$(PYTHON) bench/embed.py

# optional: the llama.cpp generator backend (builds the llama-cpp-python wheel once, ~10-15 min)
llama-cpp: setup
	@bash scripts/build_llama_cpp.sh
