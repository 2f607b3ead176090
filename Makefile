# The two commands a newcomer needs (see README):
#   sudo make lab    build the local lab and deploy the whole cluster to it
#   sudo make test   lint, unit and gateway tests, then the lab cycle with testinfra

VENV := .venv
BIN := $(VENV)/bin

.PHONY: bootstrap lab test lint unit lab-down

bootstrap:
	@scripts/bootstrap

lab: bootstrap
	$(BIN)/hearth lab deploy inventory/lab.yml

test: bootstrap lint
	$(BIN)/pytest

lint: bootstrap
	$(BIN)/ruff check .

unit: bootstrap
	$(BIN)/pytest tests/unit tests/gateway

lab-down: bootstrap
	$(BIN)/hearth lab down
