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

# The lab cycle on three shapes at once (inventory/lab.yml in the default lab; inventory/lab2.yml
# and the machine kinds, tests/lab/kinds.yml, each in a lab of its own beside it), so no check
# can lean on one inventory; the tests that need no lab run while the two beside converge,
# before inventory/lab.yml's: scripts/test.
test: bootstrap lint
	$(SUDO) scripts/test

lint: bootstrap
	$(BIN)/ruff check .

unit: bootstrap
	$(BIN)/pytest tests/unit tests/gateway

lab-down: bootstrap
	$(SUDO) $(BIN)/hearth lab down
