#!/usr/bin/env bash
# lab/build.sh: builds (or reuses) the Xen lab's images under lab/cache/, from Debian packages
# only (apt-get download + dpkg-deb -x, debootstrap). Each stage has a key file; a stage is
# rebuilt only when its inputs (package versions, these scripts, the node binary) change.
#
#   cache/boot/xen.elf, vmlinuz, vmlinux   Xen 4.17 (32-bit ELF for QEMU multiboot), the kernel (+ unpacked)
#   cache/rootfs/                   debootstrap minbase + xen-utils-4.17 (C xenstored, xl)
#   cache/dom0.cpio.zst             dom0 initramfs: rootfs + modules + node + lab/dom0/init
#   cache/guest-base.cpio.zst       guest initramfs: busybox, node, xenstore-* CLI, lab/domu/init
#   cache/dist/                     the project compiled by tsc (rebuilt every run)
#   cache/app.tar                   dist/{src,dom0,domU-agent} + the npm packages they import, for dom0
#   cache/guest.img                 guest-base + the agent layer (dist + node_modules it needs)
#
# zstd everywhere: the emulated kernels unpack it several times faster than gzip.
# Needs root and: qemu-system-x86 debootstrap busybox-static cpio kmod zstd binutils xz-utils file.
set -euo pipefail
LAB=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$LAB")
C=$LAB/cache
MIRROR=${MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- -security | head -1)}
MIRROR=${MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
NODE=${NODE:-$(command -v node)}
log() { echo "[lab build $(date +%H:%M:%S)] $*" >&2; }
die() { echo "lab build: $*" >&2; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
# stage NAME KEY: true when the stage must be (re)built; done_stage NAME KEY records success
stage() { [ "$(cat "$C/.key-$1" 2>/dev/null)" != "$2" ]; }
done_stage() { echo "$2" > "$C/.key-$1"; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, device nodes in the images)"
for t in qemu-system-x86_64 debootstrap cpio depmod modprobe zstd gzip strip xz file gcc; do
  command -v $t >/dev/null || die "missing $t; install: apt-get install -y --no-install-recommends qemu-system-x86 debootstrap busybox-static cpio kmod zstd gzip binutils xz-utils file"
done
[ -x /bin/busybox ] || die "missing /bin/busybox (apt-get install busybox-static)"
[ -n "$NODE" ] || die "no node binary"
mkdir -p "$C"

# ---------------------------------------------------------------- Xen + kernel (never installed on the host)
kver() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{sub("linux-image-","",$2); print $2; exit}'; }
KVER=$(kver); [ -n "$KVER" ] || { apt-get update >/dev/null; KVER=$(kver); }
[ -n "$KVER" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
XENVER=$(apt-cache policy xen-hypervisor-4.17-amd64 | awk '/Candidate:/{print $2}')
K_BOOT="$KVER $XENVER vmlinux"
if stage boot "$K_BOOT"; then
  log "downloading xen-hypervisor-4.17-amd64 $XENVER + linux-image-$KVER"
  rm -rf "$C/debs" "$C/extract" "$C/boot"; mkdir -p "$C/debs" "$C/extract" "$C/boot"
  (cd "$C/debs" && apt-get download xen-hypervisor-4.17-amd64 "linux-image-$KVER" >/dev/null)
  for f in "$C"/debs/*.deb; do dpkg-deb -x "$f" "$C/extract"; done
  depmod -b "$C/extract" "$KVER"
  zcat "$C/extract/boot/xen-4.17-amd64.gz" > "$C/boot/xen.elf"
  cp "$C/extract/boot/vmlinuz-$KVER" "$C/boot/vmlinuz"
  # guests get the kernel already unpacked: xl would otherwise un-xz it in emulated dom0 each time
  off=$(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$C/boot/vmlinuz" | head -1 | cut -d: -f1)
  tail -c +$((off + 1)) "$C/boot/vmlinuz" | xz -dc > "$C/boot/vmlinux" 2>/dev/null || true
  file "$C/boot/vmlinux" | grep -q ELF || die "could not unpack the kernel's xz payload"
  done_stage boot "$K_BOOT"
fi

# ---------------------------------------------------------------- dom0 root file system
INCLUDE=xen-utils-4.17,xenstore-utils,kmod,procps,busybox
K_ROOTFS="bookworm $INCLUDE $MIRROR"
if stage rootfs "$K_ROOTFS"; then
  log "debootstrap bookworm minbase + $INCLUDE (about 1 min)"
  rm -rf "$C/rootfs"
  debootstrap --variant=minbase --include=$INCLUDE bookworm "$C/rootfs" "$MIRROR" > "$C/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $C/debootstrap.log"
  R=$C/rootfs
  rm -rf $R/usr/share/doc/* $R/usr/share/man/* $R/usr/share/locale/* $R/usr/share/info/* \
         $R/var/cache/apt/*.bin $R/var/cache/apt/archives/*.deb $R/var/lib/apt/lists/*_Packages
  done_stage rootfs "$K_ROOTFS"
fi

# node, stripped of its debug info (99 -> 86 MB): it lives in RAM in both images
if [ ! -x "$C/node" ] || [ "$(cat "$C/.node-src" 2>/dev/null)" != "$(sha256sum < "$NODE")" ]; then
  strip -o "$C/node" "$NODE"; sha256sum < "$NODE" > "$C/.node-src"
fi
NODE_KEY=$(cat "$C/.node-src")

# ---------------------------------------------------------------- dom0 initramfs
K_DOM0="$K_BOOT|$K_ROOTFS|$NODE_KEY|$(hash_of "$0" "$LAB"/dom0/*)"
if stage dom0 "$K_DOM0"; then
  log "building the dom0 initramfs"
  D=$C/dom0-root; rm -rf "$D"; cp -a "$C/rootfs" "$D"
  mkdir -p $D/lib/modules/$KVER
  cp "$C"/extract/lib/modules/$KVER/modules.{order,builtin,builtin.modinfo} $D/lib/modules/$KVER/
  # no udev in dom0: the Xen device modules and 9p over virtio are loaded by /init (+ their deps)
  for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd 9p 9pnet_virtio virtio_pci; do
    modprobe -d "$C/extract" -S "$KVER" --show-depends $m | awk '$1=="insmod"{print $2}'
  done | sort -u | while read -r f; do
    rel=${f#*/lib/modules/$KVER/}; mkdir -p "$D/lib/modules/$KVER/$(dirname "$rel")"; cp "$f" "$D/lib/modules/$KVER/$rel"
  done
  depmod -b "$D" "$KVER"
  # the C xenstored (what Qubes runs), not Debian's default oxenstored; guest consoles logged
  sed -i '/^XENSTORED=/d;/^XENCONSOLED_ARGS=/d' $D/etc/default/xen
  printf '%s\n' 'XENSTORED=/usr/lib/xen-4.17/bin/xenstored' 'XENCONSOLED_ARGS="--log=guest"' >> $D/etc/default/xen
  mkdir -p $D/mnt/host $D/mnt/out $D/var/log/xen/console $D/var/lib/xen $D/opt/lab
  cp "$C/node" $D/usr/local/bin/node
  cp "$C/boot/vmlinux" $D/opt/lab/vmlinux
  install -m 755 "$LAB/dom0/init" $D/init
  echo 'set enable-bracketed-paste off' > $D/root/.inputrc
  (cd "$D" && find . | cpio -o -H newc --quiet | zstd -q -T0 -3) > "$C/dom0.cpio.zst"
  rm -rf "$D"
  done_stage dom0 "$K_DOM0"
fi

# ---------------------------------------------------------------- guest base initramfs
K_GUEST="$K_ROOTFS|$NODE_KEY|$(hash_of "$0" "$LAB"/domu/*)"
if stage guest "$K_GUEST"; then
  log "building the guest base initramfs"
  G=$C/guest-root; rm -rf "$G"; mkdir -p $G/{bin,proc,sys,dev,tmp,run,usr/bin,lib/x86_64-linux-gnu,lib64,opt/xmem}
  cp /bin/busybox $G/bin/busybox
  # the xenstore-* CLI (one multicall binary) for the lab's test hooks
  cp "$C/rootfs/usr/bin/xenstore-write" $G/usr/bin/xenstore
  for n in read write exists list rm ls watch chmod; do ln -sf xenstore $G/usr/bin/xenstore-$n; done
  cp "$C/node" $G/usr/bin/node
  libs=$( (ldd "$C/node"; ldd "$C/rootfs/usr/bin/xenstore-write" 2>/dev/null) | awk '/=> \//{print $3}' | sort -u)
  for l in $libs libxenstore.so.4 libxentoolcore.so.1; do
    f=$l; [ -e "$f" ] || f=$C/rootfs/lib/x86_64-linux-gnu/$(basename "$l"); cp -L "$f" $G/lib/x86_64-linux-gnu/
  done
  cp -L /lib64/ld-linux-x86-64.so.2 $G/lib64/
  install -m 755 "$LAB/domu/init" $G/init
  install -m 755 "$LAB/domu/hooks.sh" $G/bin/lab-hooks
  (cd "$G" && find . | cpio -o -H newc --quiet | zstd -q -T0 -10) > "$C/guest-base.cpio.zst"
  rm -rf "$G"
  done_stage guest "$K_GUEST"
fi

# ---------------------------------------------------------------- xmem-xc (libxenctrl helper for dom0)
# Compiled here against Debian's libxen-dev headers and the rootfs's own libxenctrl 4.17.
K_XC="$XENVER|$K_ROOTFS|$(hash_of "$ROOT/dom0/native/xmem-xc.c")"
if stage xc "$K_XC"; then
  log "building xmem-xc against libxenctrl $XENVER"
  rm -rf "$C/xendev"; mkdir -p "$C/xendev/deb"
  (cd "$C/xendev/deb" && apt-get download libxen-dev >/dev/null 2>&1) || die "apt-get download libxen-dev failed"
  dpkg-deb -x "$C"/xendev/deb/libxen-dev_*.deb "$C/xendev/root"
  RL=$C/rootfs/usr/lib/x86_64-linux-gnu
  gcc -O2 -Wall -Werror -I "$C/xendev/root/usr/include" -o "$C/xmem-xc" "$ROOT/dom0/native/xmem-xc.c" \
    -L"$RL" -l:libxenctrl.so.4.17 -Wl,-rpath-link,"$RL" || die "xmem-xc did not compile"
  strip "$C/xmem-xc"
  done_stage xc "$K_XC"
fi

# ---------------------------------------------------------------- the project (every run; cheap)
log "compiling the project (tsc -> lab/cache/dist)"
rm -rf "$C/dist"
(cd "$ROOT" && npx tsc -p tsconfig.json --outDir "$C/dist" --sourceMap false) > "$C/tsc.log" 2>&1 \
  || log "tsc reported errors (emitted anyway; see lab/cache/tsc.log)"
[ -f "$C/dist/dom0/cli.js" ] || die "tsc emitted nothing; see $C/tsc.log"

# dom0's copy of the project: the CLI bundled by esbuild (one file per command plus shared
# chunks, the npm packages inside), the lab's state reader, and xmem-xc beside the CLI. Node
# starting from a dozen files instead of hundreds (zod, pino, ws, execa...) is what makes
# `xmem run` start in seconds rather than a minute in the emulated dom0.
P=$C/app; rm -rf "$P"; mkdir -p "$P/xmem"
(cd "$ROOT" && npx esbuild dom0/cli.ts dom0/commands/*.ts test/xen/state.ts test/xen/wait-flag.ts --bundle --splitting --format=esm \
  --platform=node --target=node20 --outdir="$P/xmem/bundle" --outbase=. --legal-comments=none --log-level=warning \
  --external:bufferutil --external:utf-8-validate \
  "--banner:js=import { createRequire as __xmemRequire } from 'node:module'; const require = __xmemRequire(import.meta.url);") \
  || die "esbuild could not bundle the dom0 CLI"
mkdir -p "$P/xmem/bundle/dom0/native"; cp "$C/xmem-xc" "$P/xmem/bundle/dom0/native/xmem-xc"
tar -C "$P" -cf "$C/app.tar" xmem
rm -rf "$P"

# Agent layer: appended to the guest base as a second cpio archive (the kernel unpacks both).
# The guest runs what an admin installs: `npm run build:agent`'s one-file agent and its native
# PSI/meminfo helper beside it, with the unit's node flags; dist/src is there for the probes.
A=$C/agent-root; rm -rf "$A"; mkdir -p "$A/opt/xmem/agent"
(cd "$ROOT" && npm run -s build:agent) >&2 || die "npm run build:agent failed"
cp "$ROOT/domU-agent/dist/xmem-agent.mjs" "$A/opt/xmem/agent/"
[ -x "$ROOT/domU-agent/dist/xmem-psi-trigger" ] && cp "$ROOT/domU-agent/dist/xmem-psi-trigger" "$A/opt/xmem/agent/"
cp -a "$C/dist/src" "$A/opt/xmem/src"
mkdir -p "$A/opt/xmem/lab"; cp "$ROOT"/test/xen/guest/*.mjs "$A/opt/xmem/lab/"
flags=$(sed -n 's/^ExecStart=.* node \(.*\) [^ ]*xmem-agent$/\1/p' "$ROOT/domU-agent/xmem-agent.service")
echo "env UV_THREADPOOL_SIZE=2 node $flags /opt/xmem/agent/xmem-agent.mjs --xenstore /dev/xen/xenbus ${AGENT_ARGS:-}" > "$A/opt/xmem/agent-entry"
(cd "$A" && find . | cpio -o -H newc --quiet | zstd -q -T0 -10) > "$C/agent.cpio.zst"
cat "$C/guest-base.cpio.zst" "$C/agent.cpio.zst" > "$C/guest.img"
rm -rf "$A"
log "images ready: $(du -h "$C/dom0.cpio.zst" "$C/guest.img" | awk '{printf "%s %s  ", $2, $1}')"
