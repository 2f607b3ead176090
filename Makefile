# The two commands a newcomer needs (see README), as root or as a user with sudo:
#   make lab    build the local lab and deploy the whole cluster to it
#   make test   lint, unit and gateway tests, then the lab cycle with testinfra on both lab shapes

VENV := .venv
BIN := $(VENV)/bin
# The lab needs root: as root nothing is prefixed (a fresh Debian has no sudo); otherwise sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: bootstrap lab test lint unit lab-down

bootstrap:
	@$(SUDO) scripts/bootstrap

lab: bootstrap
	$(SUDO) $(BIN)/hearth lab deploy inventory/lab.yml

# Everything on the default lab (inventory/lab.yml), then the lab cycle again on the second
# shape (inventory/lab2.yml), so no check can lean on one inventory.
test: bootstrap lint
	$(SUDO) $(BIN)/pytest
	$(SUDO) $(BIN)/pytest tests/lab --hearth-inventory inventory/lab2.yml --hearth-lab

lint: bootstrap
	$(BIN)/ruff check .

unit: bootstrap
	$(BIN)/pytest tests/unit tests/gateway

lab-down: bootstrap
	$(SUDO) $(BIN)/hearth lab down
