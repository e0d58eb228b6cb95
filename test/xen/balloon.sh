# balloon: no xmem service (the agents run but nobody reads them). Two PV guests; dom0 writes memory/target in xenstore (raising Xen's
# maxmem first when growing, as qmemman does) and the real balloon drivers follow: xl list shows
# each guest's allocation move. Also measures the raw balloon rates down and up.
lab_pair || exit 1
xl list | sed 's/^/    /'
declare -A ceiling; for g in g1 g2; do ceiling[$g]=$(xsr "$(dp $g)/memory/static-max"); done
move() { # move NAME MIB: one step, asserted on xl list; prints the rate
  local name=$1 want=$2 d before; d=$(dp "$name"); before=$(mem "$name")
  [ "$want" -gt "$before" ] && xl mem-max "$name" $((want + 1))m
  local t0; t0=$(now_ms)
  xenstore-write "$d/memory/target" $((want * 1024))
  if wait_until 60 mem_near "$name" "$want"; then
    local ms=$(( $(now_ms) - t0 )) mib=$(( want > before ? want - before : before - want ))
    pass "$name: target ${want} MiB via xenstore -> xl list ${before} -> $(mem "$name") MiB in ${ms} ms"
    bench "balloon $([ "$want" -gt "$before" ] && echo up || echo down) mib=$mib ms=$ms"
  else
    fail "$name: target ${want} MiB: xl list still $(mem "$name") MiB after ${WAITED_MS} ms"; guest_console "$name"
  fi
}
# (not too low: node and its initramfs (~95 MB) live in each guest's RAM)
move g1 288
move g2 320
move g1 640
move g2 512
move g1 384
move g2 384
xl list | sed 's/^/    /'
# xl mem-max rewrote memory/static-max (Xen 4.17): put the creation ceilings back, or every
# later scenario would see a guest capped at the last raw step
for g in g1 g2; do [ -n "${ceiling[$g]}" ] && xl mem-max $g $(( ${ceiling[$g]} / 1024 ))m; done
info "ceilings restored: g1 $(xsr "$(dp g1)/memory/static-max") KiB, g2 $(xsr "$(dp g2)/memory/static-max") KiB (static-max)"
