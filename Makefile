# The two commands a change must pass (the README's "Layout and development"; .ci/run runs the same tests).
.PHONY: test lint format

test:
	python -m pytest -q tests

lint:
	ruff check . && ruff format --check .

format:
	ruff check --fix . && ruff format .
