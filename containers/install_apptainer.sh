#!/usr/bin/env bash
# Install Apptainer 1.4 (Debian sid's package) into PREFIX on Debian 12 bookworm, as root, without
# adding sid to the system's apt sources. sid's apptainer needs GLIBC_2.38 (bookworm has 2.36), so
# apptainer and its starter are patched to use a private copy of sid's glibc (interpreter + DT_RPATH).
# Recipe and pitfalls: /work/shared/reference/apptainer_debian12.md.
#
# usage: containers/install_apptainer.sh [PREFIX]        (default /opt/apptainer)
# env:   DEBIAN_MIRROR (default: the mirror of the system's apt sources, else http://deb.debian.org/debian)
# Idempotent: exits at once when PREFIX/bin/apptainer already reports version 1.4.x.
set -euo pipefail
PREFIX=${1:-/opt/apptainer}
ARCH_TRIPLET=x86_64-linux-gnu

if [ "$(id -u)" != 0 ]; then echo "install_apptainer: must run as root" >&2; exit 2; fi
if "$PREFIX/bin/apptainer" --version 2>/dev/null | grep -q '^apptainer version 1\.4\.'; then
    ln -sfn apptainer "$PREFIX/bin/singularity"   # the compatibility name, as Debian's package ships it
    "$PREFIX/bin/apptainer" --version; exit 0
fi
if [ -z "${DEBIAN_MIRROR:-}" ]; then
    DEBIAN_MIRROR=$(grep -rhoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
        | awk '{print $2}' | head -n1 || true)
    DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fi

# 1. bookworm host tools (from bookworm itself); only what is missing
need=()
for p in patchelf squashfs-tools squashfuse fuse2fs fuse-overlayfs fuse3 uidmap debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if ((${#need[@]})); then
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. download sid .debs through a private apt state (system sources untouched)
WORK=$(mktemp -d -t apptainer-sid.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/debs" "$WORK/x"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR sid main" > "$WORK/sid.list"
APT=(-o Dir::Etc::sourcelist="$WORK/sid.list" -o Dir::Etc::sourceparts=/nonexistent
     -o Dir::State::Lists="$WORK/lists" -o Dir::Cache="$WORK/cache"
     -o Dir::Cache::archives="$WORK/cache/archives" -o APT::Sandbox::User=root)
apt-get "${APT[@]}" update >/dev/null
(cd "$WORK/debs" && apt-get "${APT[@]}" download apptainer libc6 libseccomp2 libsqlite3-0 >/dev/null)
for d in "$WORK"/debs/*.deb; do dpkg -x "$d" "$WORK/x"; done
X="$WORK/x"; XL="$X/usr/lib/$ARCH_TRIPLET"

# 3. relocatable tree: the starter derives its prefix as 4 dirs above its resolved path, so the
#    real files live in PREFIX/libexec/apptainer and PREFIX/lib/<triplet>/apptainer is a symlink.
STAGE="$PREFIX.new"
rm -rf "$STAGE"
mkdir -p "$STAGE/bin" "$STAGE/glibc" "$STAGE/libexec" "$STAGE/lib/$ARCH_TRIPLET" \
         "$STAGE/var/lib/apptainer/mnt/session" "$STAGE/etc"
cp "$X/usr/bin/apptainer" "$STAGE/bin/"
cp -a "$XL/apptainer" "$STAGE/libexec/apptainer"
ln -s ../../libexec/apptainer "$STAGE/lib/$ARCH_TRIPLET/apptainer"
cp -a "$X/etc/apptainer" "$STAGE/etc/"
for l in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 \
         libresolv.so.2 libnss_files.so.2 libnss_dns.so.2 libnss_compat.so.2 \
         libseccomp.so.2 libsqlite3.so.0; do
    cp -L "$XL/$l" "$STAGE/glibc/$l"
done

# 4. patch ELF: private interpreter + DT_RPATH (RUNPATH is not used for transitive deps)
for f in "$STAGE/bin/apptainer" "$STAGE/libexec/apptainer/bin/starter"; do
    patchelf --set-interpreter "$PREFIX/glibc/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$PREFIX/glibc" "$f"
done

# 5. config for machines without systemd, with cgroup v1 and a reduced capability bounding set
C="$STAGE/etc/apptainer"
sed -i 's/^systemd cgroups = yes/systemd cgroups = no/' "$C/apptainer.conf"
sed -i 's/^root default capabilities = full/root default capabilities = file/' "$C/apptainer.conf"
python3 - "$C/capability.json" <<'PYEOF'
import json, sys
names = ["CHOWN","DAC_OVERRIDE","DAC_READ_SEARCH","FOWNER","FSETID","KILL","SETGID","SETUID","SETPCAP",
 "LINUX_IMMUTABLE","NET_BIND_SERVICE","NET_BROADCAST","NET_ADMIN","NET_RAW","IPC_LOCK","IPC_OWNER",
 "SYS_MODULE","SYS_RAWIO","SYS_CHROOT","SYS_PTRACE","SYS_PACCT","SYS_ADMIN","SYS_BOOT","SYS_NICE",
 "SYS_RESOURCE","SYS_TIME","SYS_TTY_CONFIG","MKNOD","LEASE","AUDIT_WRITE","AUDIT_CONTROL","SETFCAP",
 "MAC_OVERRIDE","MAC_ADMIN","SYSLOG","WAKE_ALARM","BLOCK_SUSPEND","AUDIT_READ","PERFMON","BPF","CHECKPOINT_RESTORE"]
bnd = int([l for l in open("/proc/self/status") if l.startswith("CapBnd:")][0].split()[1], 16)
caps = ["CAP_" + n for i, n in enumerate(names) if bnd >> i & 1]
json.dump({"users": {"root": caps}, "groups": {}}, open(sys.argv[1], "w"), indent=1)
PYEOF

# 6. host prerequisites for --fakeroot builds (root needs a subordinate id range)
grep -q '^root:' /etc/subuid || echo 'root:200000:65536' >> /etc/subuid
grep -q '^root:' /etc/subgid || echo 'root:200000:65536' >> /etc/subgid
chmod -R a+rX "$STAGE"

ln -sfn apptainer "$STAGE/bin/singularity"   # the compatibility name, as Debian's package ships it

# swap into place only once complete, so a failed install never looks finished
rm -rf "$PREFIX"; mv "$STAGE" "$PREFIX"
"$PREFIX/bin/apptainer" --version
