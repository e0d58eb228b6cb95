#!/usr/bin/env bash
# Fetches Debian's real xenstore peers (C xenstored and oxenstored from xen-utils-4.17, the
# xenstore-* tools, libxenstore, python3-pyxs) into a private cache and builds the LD_PRELOAD
# shim that lets them run without a hypervisor. Nothing is installed system-wide: the .debs are
# fetched with `apt-get download` and unpacked with `dpkg-deb -x`.
#
#   test/peer/install.sh          # idempotent; prints the cache directory on stdout
#
# XMEM_PEER_CACHE overrides the cache (default ${XDG_CACHE_HOME:-~/.cache}/xmem-peer).
# Exit status: 0 ready, 1 failed (the reason is on stderr).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${XMEM_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xmem-peer}"
ROOT="$CACHE/root"
SHIM="$CACHE/xs-nohv-shim.so"
PKGS=(xen-utils-4.17 xenstore-utils libxenstore4 libxenevtchn1 libxengnttab1 libxenmisc4.17
      libxentoollog1 libxentoolcore1 libxencall1 libxenforeignmemory1 libxendevicemodel1
      libxen-dev python3-pyxs)

say() { echo "xmem peer install: $*" >&2; }

ready() {
  [[ -x "$ROOT/usr/lib/xen-4.17/bin/xenstored" && -x "$ROOT/usr/lib/xen-4.17/bin/oxenstored" \
     && -x "$ROOT/usr/bin/xenstore-read" && -f "$SHIM" && "$SHIM" -nt "$HERE/xs-nohv-shim.c" ]]
}
if ready; then echo "$CACHE"; exit 0; fi

# Test workers may call this concurrently on a fresh machine: one installs, the others wait.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ready; then echo "$CACHE"; exit 0; fi

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
  || { say "needs apt-get and dpkg-deb (Debian 12 bookworm)"; exit 1; }
command -v gcc >/dev/null || { say "needs gcc to build the shim (apt-get install gcc libc6-dev)"; exit 1; }

mkdir -p "$CACHE/debs" "$ROOT"
missing=()
for p in "${PKGS[@]}"; do
  ls "$CACHE/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  say "downloading ${missing[*]}"
  # apt-get download works as any user; when the package lists are missing (fresh machine)
  # it fails, and an `apt-get update` (root) is needed once.
  if ! (cd "$CACHE/debs" && apt-get download "${missing[@]}" >/dev/null 2>&1); then
    say "apt-get download failed; running apt-get update and retrying"
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq >&2; else sudo -n apt-get update -qq >&2; fi
    (cd "$CACHE/debs" && apt-get download "${missing[@]}" >&2)
  fi
fi

for d in "$CACHE"/debs/*.deb; do dpkg-deb -x "$d" "$ROOT"; done
gcc -shared -fPIC -O2 -Wall -o "$SHIM.tmp" "$HERE/xs-nohv-shim.c" -ldl
mv "$SHIM.tmp" "$SHIM"
[[ -x "$ROOT/usr/lib/xen-4.17/bin/xenstored" ]] || { say "xenstored missing after unpacking"; exit 1; }
say "ready in $CACHE"
echo "$CACHE"
