# admit (scenario 2): VM-start admission through `xmem reserve`. A start that fits only after
# squeezing the running guests is admitted and the VM boots; one that would push them below
# their floors is refused with the reason, and nothing moves.
lab_pair || exit 1
need_agents g1 g2 || exit 1
SOCK=/run/xmem/admission.sock
manager_start '{"surplus": "proportional", "service": {"sweepIntervalMs": 2000, "admissionSocket": "'$SOCK'"}}' || exit 1
wait_until 120 settled g1 g2 || info "not settled after 120 s: $(snapshot_line)"
info "settled: $(snapshot_line)"
reserve() { $XMEM reserve "$@" --socket $SOCK > /tmp/reserve.out 2>/tmp/reserve.err; }
said() { cat /tmp/reserve.out /tmp/reserve.err | head -c "${1:-600}" | tr '\n' ' '; }

# refused: more than all the guests together could give up. ("Nothing moves" holds only
# because the host settled above: a rebooted guest may still be growing.)
before="$(mem g1) $(mem g2) $(target_mib g1) $(target_mib g2)"
big=$(( $(free_mib) + $(mem g1) + $(mem g2) + 256 ))
if reserve "${big}M" --for huge; then fail "a start of ${big} MiB was admitted: $(said)"
else
  rc=$?; [ $rc = 1 ] && pass "start of ${big} MiB refused (exit 1): $(said)" \
    || fail "refusal exit code $rc (want 1): $(said 300)"
fi
sleep 5
after="$(mem g1) $(mem g2) $(target_mib g1) $(target_mib g2)"
[ "$before" = "$after" ] && pass "nothing moved after the refusal (xl list + targets: $after)" \
  || fail "memory moved after a refusal: $before -> $after"

# admitted after squeezing: a bit more than Xen has free right now
free=$(free_mib); need=$(( free + 96 )); [ $need -lt 320 ] && need=320
t0=$(now_ms)
if reserve "${need}M" --for g3 --json; then
  jq_() { node -e 'const r=JSON.parse(require("fs").readFileSync("/tmp/reserve.out","utf8"));console.log(eval(process.argv[1]))' "$1"; }
  pass "start of ${need} MiB admitted with ${free} MiB free, after $(( $(now_ms) - t0 )) ms (how: $(jq_ r.how), donors: $(jq_ 'r.donors.map(d=>JSON.stringify(d)).join(" ")'))"
  rid=$(jq_ r.id)
  [ "$(free_mib)" -ge $need ] && pass "Xen has $(free_mib) MiB free for it (xl info)" || fail "admitted, but Xen has only $(free_mib) MiB free"
  info "after squeeze: $(snapshot_line)"
  if guest_create g3 $(( need - 16 )) $(( need - 16 )) noagent; then pass "g3 (${need} MiB) boots: $(xl list g3 | tail -1 | tr -s ' ')"; fi
  $XMEM release "$rid" --socket $SOCK >/dev/null 2>&1 && pass "reservation $rid released" || fail "xmem release $rid failed"
else
  fail "start of ${need} MiB refused with ${free} MiB free: $(said)"; manager_tail
fi
for g in g1 g2; do case "$(state $g)" in *c*) fail "$g crashed during the squeeze"; guest_console $g ;; esac; done
info "end: $(snapshot_line)"
guest_destroy g3
manager_stop
