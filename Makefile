.PHONY: run test lint bench
run:  ## install and run the whole system on the embedded default
	bash deploy/scripts/run.sh
test:  ## install and run every test (lint, types, unit, integration, e2e, faults)
	bash deploy/scripts/test.sh
lint:
	uv run ruff check . && uv run mypy shared deploy services tests
bench:
	uv run python -m bench --quick
