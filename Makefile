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
	$(BIN)/attribution generate --out $(DEMO)/events.jsonl --spend $(DEMO)/spend.csv
	$(BIN)/attribution replay $(DEMO)/events.jsonl --warehouse $(DEMO)
	$(BIN)/attribution sql --warehouse $(DEMO) \
	  "select policy, model, channel, round(conversions, 2) as conversions, round(credited_value, 2) as credited_value from channel_performance where policy in ('b2c', 'b2b') order by policy, model, credited_value desc"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy .

test: $(VENV)/.installed lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache .hypothesis
