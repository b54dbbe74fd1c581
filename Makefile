# The two commands of the README: `make testnet` (a 4-validator local testnet with demo load)
# and `make test` (the whole test suite). Both create the virtual environment when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: testnet test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

testnet: $(BIN)/.installed
	$(BIN)/clearchain testnet --validators 4 --dir testnet --demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python bench/clearing.py --quick
	$(BIN)/python bench/store.py --quick

clean:
	rm -rf $(VENV) testnet .pytest_cache .hypothesis
