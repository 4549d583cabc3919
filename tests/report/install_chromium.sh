#!/usr/bin/env bash
# Install (as root) Debian's Chromium for the report's browser tests (tests/report/). Idempotent.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'ok installed'; then
  echo "[install_chromium] installing chromium"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
