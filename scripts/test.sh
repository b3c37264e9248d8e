#!/usr/bin/env bash
# Install everything the tests need, then run them. The README's quick start and CI run this.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements-test.txt
# The browser tests drive Debian's Chromium (a registry package, not a downloaded browser build).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg >/dev/null
  else
    echo "chromium is missing: install Debian's 'chromium' package (browser tests fail without it in CI)" >&2
  fi
fi
exec python -m pytest -q "$@"
