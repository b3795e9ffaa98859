#!/usr/bin/env bash
# End-to-end browser test of the Streamlit app in headless Chromium (Debian's `chromium`).
#   scripts/run_e2e.sh [extra pytest args]
# Screenshots of every page go to $INSILICO_E2E_ARTIFACTS (default tests/e2e/artifacts/).
# Needs: apt-get install -y chromium ; pip install playwright (no `playwright install`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "run_e2e: no Chromium at ${CHROMIUM:-/usr/bin/chromium} (apt-get install -y chromium)" >&2
  exit 2
fi
export INSILICO_E2E_ARTIFACTS="${INSILICO_E2E_ARTIFACTS:-$PWD/tests/e2e/artifacts}"
mkdir -p "$INSILICO_E2E_ARTIFACTS"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python -m pytest tests/e2e -m browser -q "$@"
echo "screenshots: $INSILICO_E2E_ARTIFACTS"
