# The developer's front door. Every target sets up .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

ENV ?= dev
# jsii (under aws-cdk-lib) warns at length about the machine's Node.js version; the warning is not ours to act on.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
NODE_STAMP := node_modules/.package-installed

.PHONY: demo test bench lint format synth cfn-lint chaos clean

demo: $(STAMP)
	$(BIN)/python -m local demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

SEED ?= 1
PAYMENTS ?= 200
chaos: $(STAMP)
	$(BIN)/python -m local.chaos --seed $(SEED) --payments $(PAYMENTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lambdas/payments

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The pinned CDK CLI, installed here (node_modules/), never globally. No AWS credentials needed.
synth: $(STAMP) $(NODE_STAMP)
	rm -rf cdk.out
	npx --no-install cdk synth --no-notices --no-version-reporting -c env=$(ENV) --quiet
	@echo "Synthesized PaymentWorkflow-$(ENV) into cdk.out/"

cfn-lint: synth
	$(BIN)/cfn-lint cdk.out/PaymentWorkflow-$(ENV).template.json

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $(NODE_STAMP)

# Re-installs whenever a requirements or constraints file changes.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis node_modules cdk.out build
