# Entry points: `make run` (engine + demo data) and `make test` (lint + suite on SQLite and PostgreSQL).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PostgreSQL used for the second test run; pytest-django creates and drops test_<name> itself.
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/digest

.PHONY: setup run serve test test-sqlite test-postgres lint browser postfix mailservers spamfilters wrk bench bench-web email-tools email-check

# pip's own lines (one per package collected and installed) are the progress of the long step.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is needed: run with PYTHON=python3.12")'
	@echo "== setup 1/3: creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@echo "== setup 2/3: installing requirements-dev.txt into $(VENV) (about a minute the first time)"
	@$(PY) -m pip install --progress-bar on -r requirements-dev.txt
	@echo "== setup 3/3: done; 'make run' starts the engine"
	@touch $@

setup: $(VENV)/.installed

# `make run PORT=8001 SMTP_PORT=2525` moves the site and the mail capture; links in mail follow
# (SITE_URL), and so does load_demo's admin link.
PORT ?= 8000
SMTP_PORT ?= 8025
RUN_ENV = SITE_URL=http://localhost:$(PORT) LOCAL_SMTP_PORT=$(SMTP_PORT)
run: setup
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py load_demo
	$(RUN_ENV) $(PY) manage.py devserver 127.0.0.1:$(PORT)

# The production configuration, locally (docs/operating/deployment.md): DEBUG=0 and the
# deploy checks, static files collected, migrations applied, then gunicorn with
# WEB_CONCURRENCY workers on PORT. Without SECRET_KEY, one is made once and kept in var/.
serve: export DEBUG := 0
serve: export PORT := $(PORT)
serve: export ALLOWED_HOSTS ?= localhost,127.0.0.1
serve: export SITE_URL ?= http://localhost:$(PORT)
serve: export SECRET_KEY ?= $(shell f=$(or $(VAR_DIR),var)/serve-secret-key; [ -s $$f ] || { mkdir -p $$(dirname $$f); $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $$f; }; cat $$f)
serve: setup
	$(PY) manage.py check --deploy
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py migrate --noinput
	exec $(VENV)/bin/gunicorn --config project/gunicorn.py project.wsgi

# postfix's smtp-sink, the fast C sink the benchmark measures against (aiosmtpd otherwise).
postfix:
	@command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix; }

# Real mail servers the bounce tests start privately (docs/operating/bounces.md): Postfix
# makes real DSNs, Dovecot serves the bounce mailbox over IMAP and POP3.
mailservers: postfix
	@[ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/pop3 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd dovecot-pop3d; }

# The spam filters mail providers run (docs/mail-clients.md): the spam-score test scores real
# digests and system mails with SpamAssassin's local rules and a private rspamd.
spamfilters:
	@command -v spamassassin >/dev/null && command -v rspamd >/dev/null && command -v rspamc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spamassassin rspamd; }

# The browser test drives Debian's Chromium (browser downloads are not possible here).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# doiuse-email (npm) checks the digests' HTML and CSS against caniemail.com's data; installed
# into var/node/ (git-ignored), never globally. Node and npm come from Debian when missing.
email-tools:
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	@[ -f var/node/node_modules/doiuse-email/bin/cli.js ] || npm install --silent --no-audit --no-fund --prefix var/node doiuse-email@0.4.1

# Renders real digests and prints what doiuse-email reports per client family (the test of it).
email-check: setup email-tools
	$(PY) -m pytest -q -s tests/digest/rendering/test_clients.py -k doiuse

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test-sqlite: setup
	DATABASE_URL=sqlite:///$(CURDIR)/var/test.sqlite3 $(PY) -m pytest

# On CI (CI=true) an unreachable PostgreSQL fails the run instead of skipping it.
test-postgres: setup
	@if $(PY) -c "import psycopg, sys; psycopg.connect('$(PG_TEST_URL)'.replace('/digest', '/postgres'), connect_timeout=3).close()" 2>/dev/null; then \
		echo "== PostgreSQL ($(PG_TEST_URL))"; DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest; \
	elif [ -n "$$CI" ]; then echo "PostgreSQL is not reachable at $(PG_TEST_URL); CI needs it." >&2; exit 1; \
	else echo "PostgreSQL not reachable at $(PG_TEST_URL): skipping the PostgreSQL run."; fi

test: lint email-tools test-sqlite test-postgres

# The benchmark (docs/development/benchmarks.md): e.g. make bench BENCH_ARGS="--subscribers 100000 --sink smtp-sink"
bench: setup postfix
	$(PY) bench/run.py $(BENCH_ARGS)

# Debian's wrk, the HTTP load generator of the web benchmark.
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

# The web benchmark (docs/development/benchmarks.md, web): `make serve` on PostgreSQL loaded from loopback.
# e.g. make bench-web BENCH_WEB_ARGS="--workers 4 --connections 32 --duration 10"
bench-web: setup wrk
	$(PY) bench/web.py $(BENCH_WEB_ARGS)
