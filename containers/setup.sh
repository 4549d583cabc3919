#!/usr/bin/env bash
# Everything evaluation needs on this machine, idempotent (for `make test`'s system-deps step):
# Apptainer 1.4 in /opt/apptainer (root only) and the evaluation image in the cache
# (/var/cache/mft-hpc/images/<definition hash>.sif), plus its unpacked copy for --runtime bwrap.
#   cold: ~15 s install + ~11 min image build (2 cores, load 10-15); warm: ~3 s.
# usage: containers/setup.sh [PYTHON]      (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
if [ "$(id -u)" != 0 ]; then
    echo "containers/setup.sh: not root: skipping Apptainer install and image build (container tests will skip)"
    exit 0
fi
bash containers/install_apptainer.sh /opt/apptainer
"$PY" -m mft_hpc container build --sandbox
