#!/usr/bin/env bash
# Run the whole test suite on a fresh machine (Python >= 3.10 and pip): installs Debian's
# headless Chromium for the report's browser test (when apt is there and we may use it),
# makes .venv, installs torch 2.14.1 + torchvision 0.29.1 + neurovis[test], runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  if $SUDO true 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null \
      || echo "warning: could not install chromium; the browser test will be skipped" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[test]'
exec .venv/bin/python -m pytest "$@"
