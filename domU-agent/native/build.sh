#!/bin/sh
# Builds the agent's native helper: domU-agent/native/psi-trigger.c → <outdir>/xmem-psi-trigger
# (default outdir: domU-agent/dist, beside xmem-agent.mjs). Static, -Os, stripped, so the one
# file runs in any x86_64 Linux guest. Without a C compiler this is not an error: the agent
# works without the helper (it polls), so say so loudly and succeed. A compiler that fails on
# the source is an error.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../dist}
cc=${CC:-gcc}
bin=$out/xmem-psi-trigger
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build:agent: NOTE: no C compiler ($cc) here, so $bin was NOT built." >&2
  echo "build:agent: the agent still works without it, but polls PSI every 150 ms and meminfo every 1 s (more CPU)." >&2
  exit 0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=$out/xmem-psi-trigger
flags="-Os -s -Wall -Wextra -Werror -std=c11 -fno-asynchronous-unwind-tables"
if ! $cc $flags -static -o "$bin.tmp" "$here/psi-trigger.c" 2>"$out/.psi-trigger-static.err"; then
  # No static libc (libc6-dev without libc.a is rare, but musl-less hosts exist): dynamic.
  echo "build:agent: NOTE: static link failed ($(tail -n 1 "$out/.psi-trigger-static.err")); linking dynamically" >&2
  $cc $flags -o "$bin.tmp" "$here/psi-trigger.c"
fi
rm -f "$out/.psi-trigger-static.err"
mv "$bin.tmp" "$bin"
echo "build:agent: built $bin ($(wc -c <"$bin") bytes)" >&2
