#!/bin/bash
# Runs inside the lab's dom0 (started by lab/dom0/init): main.sh SCENARIO... runs each
# test/xen/<scenario>.sh in order, in its own subshell with a time limit. Guests are shared
# between scenarios (lab_pair boots them once). Prints PASS:/FAIL:/INFO:/BENCH: lines.
set -u
# run from a copy: bash reads scripts as it goes, and the 9p share is the live work tree
if [ "$0" != /tmp/xen/main.sh ]; then rm -rf /tmp/xen && cp -r "$(dirname "$0")" /tmp/xen && exec bash /tmp/xen/main.sh "$@"; fi
HERE=/tmp/xen
. "$HERE/lib.sh"
echo "LAB: xen $(xl info | awk '/^xen_version/{print $3}'), $(xl info | awk '/^total_memory/{print $3}') MiB, dom0 $(mem Domain-0) MiB"
cp "$CACHE/guest.img" "$GUEST_IMG"; tar -xf "$CACHE/app.tar" -C /opt
for s in "$@"; do
  if [ ! -f "$HERE/$s.sh" ]; then echo "FAIL: $s: no such scenario (test/xen/$s.sh)"; continue; fi
  echo "LAB: scenario $s start at $(cut -d' ' -f1 /proc/uptime)s"
  t0=$(now_ms)
  SCEN=$s timeout -k 10 "${SCENARIO_TIMEOUT:-900}" bash -c ". '$HERE/lib.sh'; . '$HERE/$s.sh'" 2>&1
  rc=$?
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "FAIL: $s: timed out"
  echo "LAB: scenario $s end rc=$rc after $(( $(now_ms) - t0 )) ms"
  pkill -f 'cli.js run' 2>/dev/null   # no manager outlives its scenario
  timeout 20 cp /tmp/xmem-*.log /mnt/out/ 2>/dev/null
done
xl list | sed 's/^/LAB: /'
