# The two commands a new user needs: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lint bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/edgekit demo --out runs/demo

test: setup
	.venv/bin/python -m pytest -q -ra

lint: setup
	.venv/bin/ruff check edgekit tests benchmarks scripts
	.venv/bin/ruff format --check edgekit tests benchmarks scripts

bench: setup
	.venv/bin/python benchmarks/distill_table.py
