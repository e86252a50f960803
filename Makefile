# The developer's front door. Every target sets up .venv from the pinned requirements first.
# Python 3.12 is what Lambda and the local stack run: found on PATH or under pyenv, else python3 (README: Python).
PYTHON ?= $(firstword $(shell for candidate in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12); do \
	$$candidate -c '' 2>/dev/null && echo $$candidate; done) python3)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed-$(PYTHON_VERSION)

ENV ?= dev
# jsii (under aws-cdk-lib) warns at length about the machine's Node.js version; the warning is not ours to act on.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
NODE_STAMP := node_modules/.package-installed
# The browser the console's tests drive (tests/e2e/test_console_browser.py); the tests read it from the environment.
export CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# checkov pins boto3/botocore exactly, in conflict with requirements.txt: a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.requirements-installed-$(PYTHON_VERSION)

.PHONY: demo test check asl schemas mutants bench lint format synth cfn-lint checkov chaos clean

demo: $(STAMP)
	$(BIN)/python -m local demo

# Every tier: unit, adapters, converge, workflow, infra (checkov included), chaos, e2e (the console's
# browser tests included), bench.
test: $(STAMP) $(CHECKOV_STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

# The fast tiers, for the edit loop: the domain (no AWS emulator) and the adapters on moto in process.
check: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/adapters -q

# Write statemachine/*.asl.json from the Python that defines them (the committed files must match).
asl: $(STAMP)
	$(BIN)/python -m statemachine.build

# The JSON Schema of each payments event (schemas/events/), from payments.events.
schemas: $(STAMP)
	$(BIN)/python -m schemas.build

# Mutation testing of lambdas/payments against the fast tiers; not part of `make test` (README: Tests).
# (mutants/ is removed first: mutmut keeps old verdicts when only the tests changed.)
mutants: $(STAMP)
	rm -rf mutants
	$(BIN)/python -m mutmut run --max-children 2
	$(BIN)/python -m mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json
	$(BIN)/python -m mutmut results | grep ': survived$$' || true

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

# The scanner an auditor runs on the synthesized template (tests/infra/test_checkov.py runs it on prod).
checkov: $(CHECKOV_STAMP) synth
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --file cdk.out/PaymentWorkflow-$(ENV).template.json \
		--framework cloudformation --skip-download --compact

$(CHECKOV_STAMP): requirements-checkov.txt
	@test "$$($(CHECKOV_VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$(PYTHON_VERSION)" \
		|| { rm -rf $(CHECKOV_VENV) && $(PYTHON) -m venv $(CHECKOV_VENV); }
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

# Debian's Chromium, installed when missing (root, or sudo). No test tool ever downloads a browser of its own.
$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation
	@test -x $(CHROMIUM) || { echo "Chromium was installed but is not at $(CHROMIUM); set CHROMIUM=" >&2; exit 1; }

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $(NODE_STAMP)

# Re-installs whenever a requirements or constraints file changes.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + "); set PYTHON=python3.12")'
	@test "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$(PYTHON_VERSION)" \
		|| { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis node_modules cdk.out build mutants
