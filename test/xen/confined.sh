# confined (scenario 4): a guest's writes stay in its own subtree. Inside g1, xmem's xenstore
# client (the one the agent uses, over /dev/xen/xenbus) writes its own data/ key and tries keys
# elsewhere: each of those fails with EACCES, and dom0 confirms nothing was written.
lab_pair || exit 1
id1=$(domid g1); id2=$(domid g2)
own=data/lab-probe
others="memory/target /local/domain/$id1/name /local/domain/0/lab-probe /local/domain/$id2/data/lab-probe /tool/lab-probe /lab-probe"
out=$(guest_run g1 "node /opt/xmem/lab/write-probe.mjs $own $others") || { fail "g1 did not answer the probe within 150 s"; guest_console g1; exit 1; }
info "probe in g1: $(echo "$out" | tr '\n' ';')"
# (the probe ends itself with SIGKILL: exit code 137 after its answers)
echo "$out" | grep -q "^[0-9]* connected " || { fail "probe failed to run: $out"; guest_console g1; exit 1; }
echo "$out" | grep -q "^$own ok$" && [ "$(xsr /local/domain/$id1/$own)" = lab-probe ] \
  && pass "g1 writes its own $own (xenstore has it)" || fail "g1 could not write its own $own: $out"
for p in $others; do
  if echo "$out" | grep -q "^$p EACCES$"; then pass "g1 write to $p fails with EACCES"
  else fail "g1 write to $p: $(echo "$out" | grep "^$p " || echo 'no answer')"; fi
done
[ "$(xsr /local/domain/0/lab-probe)$(xsr /local/domain/$id2/data/lab-probe)$(xsr /tool/lab-probe)$(xsr /lab-probe)" = "" ] \
  && pass "dom0 sees none of the forbidden keys" || fail "a forbidden key exists in xenstore"
[ "$(xsr /local/domain/$id1/name)" = g1 ] && [ "$(target_mib g1)" != 0 ] && pass "g1's name and memory/target unchanged" \
  || fail "g1's name or target was overwritten"
# the agent (if running) only ever wrote its report under its own data/
if agents_up g1; then pass "g1's agent publishes its report at data/xmem ($(xsr /local/domain/$id1/data/xmem | wc -c) bytes)"; fi
