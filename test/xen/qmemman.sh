# qmemman (scenario 6): the same loop with the qmemman-compatible policy, fed the way Qubes
# feeds qmemman: dom0 makes memory/meminfo guest-writable and the agent writes Qubes' number
# there. g1 pins memory → grows; frees it → shrinks.
lab_pair || exit 1
need_agents g1 g2 || exit 1
for g in g1 g2; do d=$(dp $g); xenstore-write "$d/memory/meminfo" ""; xenstore-chmod "$d/memory/meminfo" n0 "b$(domid $g)"; done
qubes_up() { local v; v=$(xsr "$(dp "$1")/memory/meminfo"); [ -n "$v" ] && [ "$v" -gt 0 ] 2>/dev/null; }
if wait_until 90 qubes_up g1 && wait_until 30 qubes_up g2; then
  pass "agents write Qubes' memory/meminfo: g1 $(xsr "$(dp g1)/memory/meminfo") KiB, g2 $(xsr "$(dp g2)/memory/meminfo") KiB"
else fail "no Qubes memory/meminfo from the agents"; fi
manager_start '{"policy": "qmemman", "service": {"sweepIntervalMs": 2000}}' || exit 1
wait_until 60 steady g1 g2 || info "targets still moving after 60 s"
info "settled (qmemman): $(snapshot_line)"
# qmemman hands out all free memory, so g1 must pin more than it has available and grow at g2's expense
base=$(mem g1); hog=$(( $(avail_mib g1) + 64 ))
guest_hog g1 $hog@16
if wait_until 60 mem_above g1 $(( base + 32 )); then
  pass "qmemman policy: g1 pinning ${hog} MiB grows ${base} -> $(mem g1) MiB (target $(target_mib g1)) in ${WAITED_MS} ms"
else fail "qmemman policy: g1 stays at $(mem g1) MiB"; manager_tail; fi
wait_until 90 hog_done g1; peak=$(mem g1)
guest_hog g1 0; wait_until 30 hog_done g1
if wait_until 120 mem_below g1 $(( peak - 64 )); then pass "qmemman policy: g1 shrinks after freeing: ${peak} -> $(mem g1) MiB"
else fail "qmemman policy: g1 still $(mem g1) MiB after freeing"; manager_tail; fi
status_json && info "policy reported by xmem status: $(node -e 'console.log(JSON.parse(require("fs").readFileSync("/tmp/status.json","utf8")).policy)')"
manager_stop
