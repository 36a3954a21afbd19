#!/usr/bin/env bash
# Generates the ROS interfaces rts_ros.msg (msg/*.msg) into a venv built from the ROS 2 wheels, so that
# `import rts_ros.msg` works without sourcing any setup file. Called by tools/setup_venv.sh after
# `pip install -e .`. Idempotent: exits within a second when nothing changed since the last build.
# On a ROS 2 machine use colcon instead (README, section "ROS 2 node").
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(cd "${VENV:-.venv}" && pwd)
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "build_msgs: no Python at $PY (run make setup)" >&2; exit 1; }

want=$(cat msg/*.msg srv/*.srv CMakeLists.txt package.xml tools/build_msgs.sh | sha256sum | cut -d' ' -f1)
stamp="$VENV/.rts_ros_msgs"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$PY" -c "import rts_ros, rts_ros.msg" >/dev/null 2>&1; then
  echo "build_msgs: rts_ros.msg is up to date"
  exit 0
fi
command -v cmake >/dev/null || { echo "build_msgs: cmake not found (apt-get install cmake g++)" >&2; exit 1; }

# 1. The wheels' exported CMake files name the include folders of the machine that built them
#    (Python headers, numpy headers). Point them at this venv's. Repeatable: only foreign paths change.
"$PY" - "$VENV" <<'PYEOF'
import pathlib, re, sys, sysconfig
import numpy
venv = pathlib.Path(sys.argv[1])
py_inc, np_inc = sysconfig.get_paths()["include"], numpy.get_include()
pat_py = re.compile(r'[^";]*/include/python3\.\d+(?=[";])')
pat_np = re.compile(r'[^";]*/numpy/_core/include(?=[";])')
changed = 0
for f in (venv / "share").glob("*/cmake/*.cmake"):
    text = f.read_text()
    if "INTERFACE_INCLUDE_DIRECTORIES" not in text:
        continue
    new = pat_np.sub(lambda m: np_inc, pat_py.sub(lambda m: py_inc, text))
    if new != text:
        f.write_text(new)
        changed += 1
print(f"build_msgs: pointed {changed} CMake export files at {py_inc} and {np_inc}")
PYEOF

# 2. Generate, compile and install the interfaces into the venv (messages only: the Python package
#    itself is the pip install).
site=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
build="$VENV/build/rts_ros_msgs"
mkdir -p "$build"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
cmake -S . -B "$build" -DRTS_ROS_MSGS_ONLY=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" \
  -DPYTHON_INSTALL_DIR="$(realpath --relative-to="$VENV" "$site")" >"$build.log" 2>&1 \
  || { tail -30 "$build.log" >&2; echo "build_msgs: cmake configure failed (log: $build.log)" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" >>"$build.log" 2>&1 \
  || { tail -30 "$build.log" >&2; echo "build_msgs: build failed (log: $build.log)" >&2; exit 1; }
cmake --install "$build" >>"$build.log" 2>&1 \
  || { tail -30 "$build.log" >&2; echo "build_msgs: install failed (log: $build.log)" >&2; exit 1; }

# 3. An editable install keeps rts_ros in the source tree, found by setuptools' finder that runs after
#    the normal path search. The generated site-packages/rts_ros must then not be a package of its
#    own: drop its __init__.py and let the editable finder answer first; the source __init__ merges
#    site-packages/rts_ros (extend_path), so rts_ros.msg and rts_ros.api both import.
if ls "$site"/__editable__*rts_ros*finder.py >/dev/null 2>&1; then
  rm -f "$site/rts_ros/__init__.py"
  cat > "$site/rts_ros_msgs_editable.pth" <<'PTH'
import sys; sys.meta_path.sort(key=lambda f: not str(getattr(f, "__module__", "")).startswith("__editable___rts_ros"))
PTH
fi
"$PY" -c "import rts_ros, rts_ros.msg; from rts_ros.msg import InitTarget, Track; from rts_ros.srv import StartTracking; assert hasattr(rts_ros, '__version__')" \
  || { echo "build_msgs: rts_ros.msg was built but does not import" >&2; exit 1; }
echo "$want" > "$stamp"
echo "build_msgs: rts_ros.msg installed into $VENV"
