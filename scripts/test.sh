#!/usr/bin/env bash
# Run the wallwm test suite: sets the workspace up first (idempotent), then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh test/foundation -k dds
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/env.sh
exec python -m pytest "$@"
