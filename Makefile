# The two commands a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_localhost.xml
export OMP_NUM_THREADS ?= 2

.PHONY: setup test test-fast demo bench clean

setup:
	@VENV=$(VENV) tools/setup_venv.sh

test: setup
	$(PY) -m pytest -q test

test-fast: setup
	$(PY) -m pytest -q test -m "not slow"

demo: setup
	$(PY) -m rts_ros.cli.demo --output demo_output

bench: setup
	$(PY) -m rts_ros.cli.bench

clean:
	rm -rf $(VENV) build install log demo_output .pytest_cache
