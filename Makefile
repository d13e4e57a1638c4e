# The README's first two commands: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo-warehouse

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/attribution demo --warehouse $(DEMO)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy .

test: $(VENV)/.installed lint
	$(BIN)/pytest -q

# Every benchmark at SCALE (small|medium|large); each rewrites its section of BENCHMARKS.md.
SCALE ?= small
bench: $(VENV)/.installed
	$(BIN)/python -m bench all --scale $(SCALE)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache .hypothesis
