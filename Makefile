# The two commands: `make run` and `make test`. Both bootstrap .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run serve test test-postgres test-rq test-stack scale-test soak lint format bench screenshots clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 12, 4) else f"imageedits needs Python >= 3.12.4; {sys.executable} is {v[0]}.{v[1]}.{v[2]}")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/python manage.py dev

# The production setup on this machine: DEBUG off, static files collected, gunicorn, workers,
# reaper (and the simulator unless OPENAI_BASE_URL is set). Plain HTTP on localhost, so the
# HTTPS-only switches are off; a secret key is made once and kept in var/.
serve: $(STAMP)
	@mkdir -p var && test -s var/secret-key || $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret-key
	DEBUG=0 SECRET_KEY="$${SECRET_KEY:-$$(cat var/secret-key)}" SECURE_SSL_REDIRECT=0 SECURE_COOKIES=0 \
		SECURE_HSTS_SECONDS=0 $(BIN)/python manage.py serve

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

# The suite again on PostgreSQL (without the browser tests), as deployments run it.
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/imageedits
test-postgres: $(STAMP)
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/python -m pytest -m "not browser" $(ARGS)

# The whole suite again with the RQ tasks backend, on its own Redis database (emptied by each
# test): RQ's worker runs the same tasks as django-tasks-db's.
RQ_TEST_REDIS_URL ?= redis://127.0.0.1:6379/14
test-rq: $(STAMP)
	TASKS_BACKEND=django_tasks_rq.RQBackend REDIS_URL=$(RQ_TEST_REDIS_URL) $(BIN)/python -m pytest $(ARGS)

# The whole suite as a scaled-out deployment runs: PostgreSQL, RQ on Redis, and images in an
# S3 bucket (moto's server, started by the tests).
test-stack: $(STAMP)
	DATABASE_URL=$(POSTGRES_URL) TASKS_BACKEND=django_tasks_rq.RQBackend REDIS_URL=$(RQ_TEST_REDIS_URL) \
		TEST_STORAGE=s3 $(BIN)/python -m pytest $(ARGS)

# 300 edits, 20% injected faults, a worker killed midway (bounded: SOAK_SECONDS, default 300).
soak: $(STAMP)
	SOAK=1 $(BIN)/python -m pytest tests/test_soak.py -p no:randomly -s $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var

# 60 edits from 10 people through 2 web processes and 3 RQ workers, on PostgreSQL, Redis and
# an S3 bucket (moto): every edit ends, nothing is sent twice, no orphan object; p50/p95.
scale-test: $(STAMP)
	$(BIN)/python bench/scale.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Every main page at 1280 px and 390 px, light and dark, into docs/screenshots/.
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py
