# The two commands a newcomer needs:
#   make run   - set up and run the portal on the embedded default (SQLite, local files,
#                in-process tasks, offline explainer) at http://127.0.0.1:8000
#   make test  - the whole test suite (pytest-django); .ci/run calls exactly this.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv deps dev-deps migrate demo audit compose-check worker beat clean

$(VENV)/bin/activate:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(VENV)/bin/activate

# Stamp files make re-runs fast: requirements are reinstalled only when they change.
$(VENV)/.deps: requirements.txt constraints.txt | $(VENV)/bin/activate
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt constraints.txt | $(VENV)/bin/activate
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

migrate: deps
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

run: demo
	@echo "Portal: http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: dev-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# Needs network access to the vulnerability database: run it on a connected machine
# before each release (docs/operations.md), not in CI here.
audit: dev-deps
	$(PIP) install --quiet pip-audit
	$(VENV)/bin/pip-audit -r requirements.txt -r requirements-dev.txt

compose-check:
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-validation-only} docker-compose -f docker-compose.yml config -q

worker: deps
	$(VENV)/bin/celery -A portal worker -Q inference,llm,default --concurrency 1 -l info

beat: deps
	$(VENV)/bin/celery -A portal beat -l info

clean:
	rm -rf $(VENV) var
