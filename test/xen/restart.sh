# restart (scenario 5): stopping `xmem run` leaves every target where it is; a new `xmem run`
# rebuilds its state from Xen and xenstore (both guests listed with their real sizes) and
# balances again (g1 pins memory and grows).
lab_pair || exit 1
need_agents g1 g2 || exit 1
manager_start '{"surplus": "free", "service": {"sweepIntervalMs": 2000}}' || exit 1
wait_until 120 settled g1 g2 || info "not settled after 120 s: $(snapshot_line)"
before="$(target_mib g1) $(target_mib g2)"; mem_before="$(mem g1) $(mem g2)"
info "before stop: $(snapshot_line)"
manager_stop
[ "${MGR_RC:-1}" = 0 ] && pass "xmem run stopped cleanly on SIGTERM" || fail "xmem run exit code ${MGR_RC:-?} on SIGTERM"
sleep 5
after="$(target_mib g1) $(target_mib g2)"
[ "$before" = "$after" ] && pass "targets stay where they were after the stop: $after MiB" \
  || fail "targets moved after the stop: $before -> $after MiB"
near "$(mem g1)" "${mem_before% *}" 8 && near "$(mem g2)" "${mem_before#* }" 8 \
  && pass "allocations unchanged after the stop: $(mem g1) $(mem g2) MiB" || fail "allocations moved: $mem_before -> $(mem g1) $(mem g2) MiB"

# hard kill too: nothing may be left half-done
manager_start '{"surplus": "free", "service": {"sweepIntervalMs": 2000}}' || exit 1
sleep 8; kill -KILL "$MGR_PID"; wait "$MGR_PID" 2>/dev/null; MGR_PID=
info "after SIGKILL: $(snapshot_line)"

manager_start '{"surplus": "free", "service": {"sweepIntervalMs": 2000}}' || exit 1
rebuilt() { status_json && [ "$(vm_field g1 'v.actualKib>0&&v.signal')" = xmem ] && [ "$(vm_field g2 'v.actualKib>0&&v.signal')" = xmem ]; }
if wait_until 60 rebuilt; then
  pass "state rebuilt after restart: g1 $(vm_field g1 'Math.round(v.actualKib/1024)') MiB, g2 $(vm_field g2 'Math.round(v.actualKib/1024)') MiB in xmem status (xl list: $(mem g1), $(mem g2))"
else
  fail "xmem status after restart: $(head -c 300 /tmp/status.json /tmp/status.err 2>/dev/null)"; manager_tail
fi
base=$(mem g1)
guest_hog g1 $(( base + 64 ))@8
if wait_until 60 mem_above g1 $(( base + 32 )); then pass "balancing resumed: g1 grows ${base} -> $(mem g1) MiB while pinning memory"
else fail "no balancing after restart: g1 stays at $(mem g1) MiB"; manager_tail; fi
wait_until 60 hog_done g1; guest_hog g1 0; wait_until 30 hog_done g1
manager_stop
