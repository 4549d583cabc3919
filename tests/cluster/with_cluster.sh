#!/usr/bin/env bash
# Run a command with the test Slurm cluster up: start it if root and none answers, and stop it
# afterwards (even on failure) only if this script started it. Not root: run without a cluster.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
started=0
if ! timeout 5 scontrol ping >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    bash "$HERE/up.sh" || { echo "test cluster failed to start" >&2; bash "$HERE/down.sh"; exit 1; }
    started=1
  else
    echo "no Slurm cluster and not root: Slurm tests will be skipped" >&2
  fi
fi
# CI (root) must not silently skip the Slurm, container or browser tests
[ "$(id -u)" = 0 ] && export MFT_HPC_REQUIRE_SLURM=1 MFT_HPC_REQUIRE_CONTAINER=1 MFT_HPC_REQUIRE_BROWSER=1
if [ "$started" = 1 ]; then trap 'bash "$HERE/down.sh"' EXIT; fi
"$@"
