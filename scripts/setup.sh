#!/usr/bin/env bash
# Set up the wallwm workspace on a machine with no ROS installed: a venv inside the repo with the
# pinned ROS 2 Kilted wheels and Python dependencies, the CMake path fix those wheels need, and a
# colcon build. Idempotent: each step runs only when its inputs changed, so a second run takes
# seconds. Users with a full ROS 2 install use rosdep + colcon instead (README).
#
# Usage: scripts/setup.sh            (then: . scripts/env.sh to use the workspace in a shell)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${WALLWM_PYTHON:-python3.11}"
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. Python 3.11 (the ROS 2 Kilted wheels are built for CPython 3.11 only) ------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PYTHON=python3
  else
    die "Python 3.11 is required (the ROS 2 Kilted wheels are cp311). Install it (Debian 12: apt-get install python3.11 python3.11-venv python3.11-dev) or point WALLWM_PYTHON at a 3.11 interpreter."
  fi
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1), but Python 3.11 is required. Set WALLWM_PYTHON to a 3.11 interpreter."
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "Python's venv module is missing. Fix: apt-get install python3.11-venv"

# --- 2. System tools and libraries -------------------------------------------------------------
# cmake + a C/C++ compiler build the interface package; EGL/OSMesa render MuJoCo offscreen.
missing_pkgs=()
command -v cmake >/dev/null 2>&1 || missing_pkgs+=(cmake)
command -v g++ >/dev/null 2>&1 || missing_pkgs+=(g++)
command -v git >/dev/null 2>&1 || missing_pkgs+=(git)
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || missing_pkgs+=(libegl1)
ldconfig -p 2>/dev/null | grep -q 'libOSMesa.so' || missing_pkgs+=(libosmesa6)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || missing_pkgs+=(libgl1)
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${missing_pkgs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null \
      || die "apt-get install ${missing_pkgs[*]} failed"
  else
    die "missing system packages: ${missing_pkgs[*]}. Fix: sudo apt-get install ${missing_pkgs[*]}"
  fi
fi

# --- 3. The venv with pinned dependencies ------------------------------------------------------
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
lock_stamp="$(stamp_of requirements.lock training/pyproject.toml) ${WALLWM_ONNXRUNTIME:-auto}"
if [ "$(cat "$VENV/.wallwm-lock" 2>/dev/null)" != "$lock_stamp" ]; then
  say "installing pinned dependencies (requirements.lock)"
  python -m pip install -q --disable-pip-version-check pip==24.3.1 setuptools==79.0.1 2>&1 \
    | grep -v '^WARNING: Location' || true
  # torch==2.13.0 in the lock is the CPU build; an unpinned torch would pull several GB of CUDA.
  python -m pip install -q --disable-pip-version-check -r requirements.lock 2>&1 | grep -v '^WARNING: Location' || true
  python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e training 2>&1 \
    | grep -v '^WARNING: Location' || true
  # ONNX Runtime: the CPU package by default; onnxruntime-gpu (same version, CUDA + TensorRT
  # providers, falls back to CPU) where an NVIDIA GPU is present or WALLWM_ONNXRUNTIME=gpu.
  if [ "${WALLWM_ONNXRUNTIME:-auto}" = gpu ] || { [ "${WALLWM_ONNXRUNTIME:-auto}" = auto ] \
       && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
    ort_version="$(sed -n 's/^onnxruntime==//p' requirements.lock)"
    say "NVIDIA GPU found: installing onnxruntime-gpu==$ort_version in place of onnxruntime"
    python -m pip uninstall -q -y onnxruntime
    python -m pip install -q --disable-pip-version-check "onnxruntime-gpu==$ort_version" 2>&1 \
      | grep -v '^WARNING: Location' || true
  fi
  python -c 'import rclpy, torch, onnxruntime, mujoco' || die "dependency install failed (see pip output above)"
  echo "$lock_stamp" > "$VENV/.wallwm-lock"
fi

# --- 4. The CMake fix: the wheels' exported CMake files hard-code the build machine's paths ------
py_include="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_include="$(python -c 'import numpy; print(numpy.get_include())')"
for f in $(grep -l '/opt/python/cp311-cp311' "$VENV"/share/*/cmake/*.cmake 2>/dev/null || true); do
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_include}#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#${py_include}#g" "$f"
done

# --- 5. colcon build (skipped when nothing under src/ or colcon.meta changed) -------------------
build_stamp="$(cd "$ROOT" && { find src colcon.meta -type f -not -name '*.pyc' -not -path '*/__pycache__/*' -printf '%P %T@ %s\n' | sort; } | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$ROOT/install/.wallwm-build" 2>/dev/null)" != "$build_stamp" ]; then
  say "colcon build"
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  colcon --log-base "$ROOT/log" build --base-paths src --symlink-install \
    --build-base "$ROOT/build" --install-base "$ROOT/install" \
    --metas "$ROOT/colcon.meta" --event-handlers console_cohesion- summary+ status- \
    || die "colcon build failed (log/latest_build has the details)"
  echo "$build_stamp" > "$ROOT/install/.wallwm-build"
fi
say "ready: . scripts/env.sh"
