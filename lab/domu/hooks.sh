#!/bin/sh
# Guest-side test hooks, driven by dom0 through xenstore keys this guest owns (data/ is
# guest-writable; dom0 writes commands under data/lab/, results come back under data/labr/):
#   data/lab/hog = MiB[@RATE]  size of a file pinned in a tmpfs (no swap, so it stays
#                        resident), written at RATE MiB/s (default: as fast as dd goes);
#                        growing it reports data/labr/grow_ms: time from the start of the
#                        allocation until the balloon's current_kb grew by 8 MiB
#   data/lab/anon = MiB[@RATE]  anonymous memory held by a node process (0 ends it); data/labr/anon
#                        = "done <MiB> ms=<time>" once allocated (Qubes counts it as used, not tmpfs)
#   data/lab/run = cmd   runs a shell command (120 s limit); data/labr/run = "<exit code> <output>"
#   data/lab/agent = start|stop
# `lab-hooks agent` runs the xmem agent in the foreground and restarts it if it exits.
XM=/sys/devices/system/xen_memory/xen_memory0
ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }
say() { xenstore-write "data/labr/$1" "$2"; }

agent() {
  while :; do
    echo "LAB-GUEST: starting agent: $(cat /opt/xmem/agent-entry)"
    sh -c "exec $(cat /opt/xmem/agent-entry)" &
    echo $! > /run/agent.pid; wait $!
    echo "LAB-GUEST: agent exited ($?)"
    [ -f /run/agent.stopped ] && return; sleep 2
  done
}
[ "$1" = agent ] && { rm -f /run/agent.stopped; agent; exit; }

hog() {
  rate=${1#*@}; [ "$rate" = "$1" ] && rate=0; set -- "${1%@*}"
  # (Debian's busybox has no mountpoint applet: without this check every call mounted a fresh
  # tmpfs over the last one, hiding, never freeing, what was pinned)
  grep -q " /hog tmpfs " /proc/mounts || { mkdir -p /hog; mount -t tmpfs -o size=8g hog /hog; }
  have=$(( $(stat -c %s /hog/f 2>/dev/null || echo 0) / 1048576 ))
  cur0=$(cat $XM/info/current_kb); t0=$(ms)
  say hog "start want=$1 have=$have cur0=$cur0 t0=$t0"
  if [ "$1" -le "$have" ]; then truncate -s "${1}M" /hog/f; say hog "done $1 freed"; return; fi
  # grow: the writer is an ordinary OOM candidate, unlike the hooks
  (echo 0 > /proc/self/oom_score_adj
   if [ "$rate" -gt 0 ]; then  # 4 MiB steps, paced
     at=$have; while [ $at -lt $1 ]; do
       dd if=/dev/zero of=/hog/f bs=1M seek=$at count=4 conv=notrunc 2>/dev/null || exit 1
       at=$((at + 4)); usleep $((4000000 / rate)); done
   else exec dd if=/dev/zero of=/hog/f bs=1M seek=$have count=$(($1 - have)) conv=notrunc 2>/dev/null; fi) &
  dd_pid=$!; grown=
  while :; do
    cur=$(cat $XM/info/current_kb)
    if [ -z "$grown" ] && [ "$cur" -ge $((cur0 + 8192)) ]; then grown=$(( $(ms) - t0 )); say grow_ms "$grown"; fi
    kill -0 $dd_pid 2>/dev/null || break
    sleep 0.1
  done
  wait $dd_pid; rc=$?
  say hog "done $1 rc=$rc dd_ms=$(( $(ms) - t0 )) grow_ms=${grown:-none} cur=$(cat $XM/info/current_kb)"
}

say ready "$(ms)"
xenstore-watch data/lab | while read -r path _; do
  case "$path" in
    */lab/hog) n=$(xenstore-read data/lab/hog); case "$n" in ''|*[!0-9@]*) ;; *) hog "$n" & ;; esac ;;
    */lab/anon) n=$(xenstore-read data/lab/anon)
               [ -s /run/anon.pid ] && kill "$(cat /run/anon.pid)" 2>/dev/null; rm -f /run/anon.pid
               case "$n" in 0|0@*) say anon "done 0 freed" ;;
                 [1-9]*) (echo 0 > /proc/self/oom_score_adj; exec node /opt/xmem/lab/anon-hog.mjs "${n%@*}" "$(echo "$n@0" | cut -d@ -f2)") &
                         echo $! > /run/anon.pid ;; esac ;;
    */lab/run) c=$(xenstore-read data/lab/run)
               [ -n "$c" ] && { out=$(timeout 120 sh -c "$c" 2>&1); rc=$?; say run "$rc $(echo "$out" | tail -c 900)"; } ;;
    */lab/agent) case "$(xenstore-read data/lab/agent)" in
                   stop) touch /run/agent.stopped; kill "$(cat /run/agent.pid)" 2>/dev/null ;;
                   # (an empty pid would make busybox kill -0 succeed on our own group)
                   start) [ -s /run/agent.pid ] && kill -0 "$(cat /run/agent.pid)" 2>/dev/null && continue
                          rm -f /run/agent.stopped; (exec /bin/lab-hooks agent) > /dev/console 2>&1 & ;;
                 esac ;;
  esac
done
