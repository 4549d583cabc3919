#!/usr/bin/env bash
# Install (as root) the Debian packages the test suite needs: Slurm 22.05 + munge + slurmdbd +
# MariaDB for the test cluster. Idempotent: installs only what is missing.
set -euo pipefail
need=()
for p in slurmctld slurmd slurm-client slurmdbd munge mariadb-server iproute2 bubblewrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  echo "[install_packages] installing ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    --no-install-recommends "${need[@]}" >/dev/null
fi
