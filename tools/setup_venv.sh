#!/usr/bin/env bash
# Creates or refreshes .venv with everything the project needs. Idempotent: when none of the inputs
# changed since the last successful run it only checks the stamp and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
inputs="requirements-dev.txt requirements-ros.txt setup.py tools/setup_venv.sh tools/build_msgs.sh CMakeLists.txt package.xml $(ls msg/*.msg 2>/dev/null | tr '\n' ' ')"
want=$(cat $inputs 2>/dev/null | sha256sum | cut -d' ' -f1)
stamp="$VENV/.rts_ros_setup"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi
[ -x "$VENV/bin/python" ] || { echo "setup: creating $VENV"; "$PY" -m venv "$VENV"; }
echo "setup: installing Python requirements (torch CPU build pinned in requirements-dev.txt)"
"$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-ros.txt
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
if [ -x tools/build_msgs.sh ]; then
  echo "setup: generating rts_ros.msg"
  VENV="$VENV" tools/build_msgs.sh
fi
echo "$want" > "$stamp"
echo "setup: done"
