# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run on every core (pytest-xdist); override with e.g. PYTEST_ARGS="-n 0 -x".
PYTEST_ARGS ?= -n auto

.PHONY: run test install migrate lint chromium nginx davclients strace

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The embedded default is served for real: DEBUG off (no debug pages), keys generated under var/.
run: export DEBUG = 0
run: export CLOUDSTORAGE_EMBEDDED = 1
run: migrate
	$(BIN)/python manage.py bootstrap_demo
	@echo "Serving http://127.0.0.1:8000 (web + worker + beat; Ctrl-C stops all three)"
	$(BIN)/honcho start -f Procfile

# The browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }

# The multi-node test (tests/deploy/) puts Debian's nginx in front of two web nodes.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { apt-get update -q && apt-get install -y -q nginx; }

# tests/disks/test_commit_durability.py traces a live worker's syscalls (fsync before the answer).
strace:
	@command -v strace >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q strace; }

# The WebDAV tests drive the real clients (tests/files/test_webdav.py).
davclients:
	@command -v litmus >/dev/null 2>&1 && command -v rclone >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q litmus rclone; }

test: install chromium nginx davclients strace
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
