# qmemman (scenario 6): the same loop with the qmemman-compatible policy, fed the way Qubes
# feeds qmemman: dom0 makes memory/meminfo guest-writable and the agent writes Qubes' number
# there. g1 allocates anonymous memory → grows; frees it → shrinks. (Anonymous, not the tmpfs
# hog: Qubes' used number counts tmpfs pages as Cached, so qmemman never sees them.)
lab_pair || exit 1
need_agents g1 g2 || exit 1
qubes_up() { local v; v=$(xsr "$(dp "$1")/memory/meminfo"); [ -n "$v" ] && [ "$v" -gt 0 ] 2>/dev/null; }
# as qubesd does at domain start (and xmem run did already if an earlier scenario ran it): never
# blank a key the agent already fills, it rewrites only on a real change
for g in g1 g2; do d=$(dp $g); qubes_up $g || xenstore-write "$d/memory/meminfo" ""; xenstore-chmod "$d/memory/meminfo" n0 "b$(domid $g)"; done
if wait_until 90 qubes_up g1 && wait_until 30 qubes_up g2; then
  pass "agents write Qubes' memory/meminfo: g1 $(xsr "$(dp g1)/memory/meminfo") KiB, g2 $(xsr "$(dp g2)/memory/meminfo") KiB"
else fail "no Qubes memory/meminfo from the agents"; fi
manager_start '{"policy": "qmemman", "service": {"sweepIntervalMs": 2000}}' || exit 1
wait_until 120 settled g1 g2 || info "not settled after 120 s: $(snapshot_line)"
info "settled (qmemman): $(snapshot_line)"
# qmemman hands out all free memory, and grows g1 (at g2's expense) once its pref, 1.3 x used,
# exceeds what it has: allocate enough that pref ends 96 MiB above g1's size, yet less than g1 has
# available (more could deadlock the guest before qmemman's next two passes)
base=$(mem g1); used=$(( $(xsr "$(dp g1)/memory/meminfo") / 1024 ))
hog=$(( (base + 96) * 10 / 13 - used )); avail=$(avail_mib g1)
[ "$hog" -lt $(( avail - 32 )) ] || hog=$(( avail - 32 ))
info "g1 ${base} MiB, used ${used} MiB, available ${avail} MiB: allocating ${hog} MiB"
guest_anon g1 $hog@16
# acceptors wait a pass for the donors' memory: allow the hog's duration and then some
if wait_until $(( hog / 16 + 60 )) mem_above g1 $(( base + 32 )); then
  pass "qmemman policy: g1 allocating ${hog} MiB grows ${base} -> $(mem g1) MiB (target $(target_mib g1)) in ${WAITED_MS} ms"
else
  fail "qmemman policy: g1 stays at $(mem g1) MiB (Qubes meminfo $(xsr "$(dp g1)/memory/meminfo") KiB; hog $(xsr "$(dp g1)/data/labr/anon"))"
  manager_tail; guest_console g1
fi
wait_until 90 anon_done g1; peak=$(mem g1)
guest_anon g1 0; wait_until 30 anon_done g1
if wait_until 120 mem_below g1 $(( peak - 64 )); then pass "qmemman policy: g1 shrinks after freeing: ${peak} -> $(mem g1) MiB"
else fail "qmemman policy: g1 still $(mem g1) MiB after freeing"; manager_tail; fi
status_json && info "policy reported by xmem status: $(node -e 'console.log(JSON.parse(require("fs").readFileSync("/tmp/status.json","utf8")).policy)')"
manager_stop
