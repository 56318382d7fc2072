#!/usr/bin/env bash
# The main job: set the workspace up (idempotent), then run the closed-loop demo (sim + policy
# over ROS 2) and write its report to outputs/demo/report.md. Arguments go to scripts/demo.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/env.sh
exec python scripts/demo.py "$@"
