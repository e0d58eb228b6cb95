# Helpers for the scenarios that run inside the lab's dom0 (sourced by main.sh; bash).
# Every assertion reads what Xen reports (xl list, xenstore), never xmem's own state.
# Output lines the host runner parses: PASS:/FAIL:/INFO:/BENCH: <scenario>: <text>.

HOST=/mnt/host                      # the repository, read-only over 9p
CACHE=$HOST/lab/cache
OUT=/mnt/out                        # lab/out on the host, writable over 9p (may be absent)
XMEM="node /opt/xmem/bundle/dom0/cli.js"   # main.sh unpacks lab/cache/app.tar into /opt (lab/build.sh)
GUEST_IMG=/tmp/guest.img            # main.sh copies it out of the 9p share once
SCEN=${SCEN:-lab}
NFAIL=0

pass() { echo "PASS: $SCEN: $*"; }
fail() { echo "FAIL: $SCEN: $*"; NFAIL=$((NFAIL + 1)); }
info() { echo "INFO: $SCEN: $*"; }
bench() { echo "BENCH: $*"; }
now_ms() { date +%s%3N; }

# xl list facts. mem NAME → MiB (empty if no such domain); state NAME → r/b/p/c/d flags
mem() { xl list "$1" 2>/dev/null | awk 'NR==2{print $3}'; }
state() { xl list "$1" 2>/dev/null | awk 'NR==2{print $5}'; }
domid() { xl domid "$1" 2>/dev/null; }
dp() { echo "/local/domain/$(domid "$1")"; }
xsr() { xenstore-read "$@" 2>/dev/null; }
target_mib() { local t; t=$(xsr "$(dp "$1")/memory/target") && echo $((t / 1024)); }

# wait_until TIMEOUT_S CMD...: polls CMD (every 0.2 s) until it succeeds; WAITED_MS = time taken
wait_until() {
  local limit=$(( $1 * 1000 )) t0; shift; t0=$(now_ms)
  while :; do
    if "$@"; then WAITED_MS=$(( $(now_ms) - t0 )); return 0; fi
    WAITED_MS=$(( $(now_ms) - t0 )); [ "$WAITED_MS" -ge "$limit" ] && return 1
    sleep 0.2
  done
}
near() { [ -n "$1" ] && [ $(( $1 > $2 ? $1 - $2 : $2 - $1 )) -le "${3:-4}" ]; }  # near A B [TOL]
mem_near() { near "$(mem "$1")" "$2" "${3:-4}"; }
mem_above() { local m; m=$(mem "$1"); [ -n "$m" ] && [ "$m" -gt "$2" ]; }
mem_below() { local m; m=$(mem "$1"); [ -n "$m" ] && [ "$m" -lt "$2" ]; }

# guest_create NAME MEM_MIB MAXMEM_MIB [noagent]: boots a lab guest, waits for its hooks
guest_create() {
  local name=$1 cfg=/tmp/$1.cfg id t0 create_ms
  cat > "$cfg" <<EOF
name = "$name"
type = "pv"
kernel = "/opt/lab/vmlinux"
ramdisk = "$GUEST_IMG"
extra = "console=hvc0 quiet"
memory = $2
maxmem = $3
vcpus = 1
on_crash = "preserve"
EOF
  t0=$(now_ms)
  xl create -p "$cfg" > "/tmp/$name.create" 2>&1 || { fail "xl create $name: $(tail -3 "/tmp/$name.create")"; return 1; }
  create_ms=$(( $(now_ms) - t0 )); id=$(domid "$name")
  [ "${4:-}" = noagent ] && xenstore-write "/local/domain/$id/data/lab-noagent" 1
  xl unpause "$name"
  if wait_until 180 xsr "/local/domain/$id/data/labr/ready" >/dev/null; then
    info "guest $name (domid $id, ${2} MiB, maxmem ${3} MiB) up in $(( $(now_ms) - t0 )) ms (xl create -p took $create_ms ms; guest uptime at ready $(xsr "/local/domain/$id/data/labr/ready") ms)"
  else
    fail "guest $name: hooks never came up"; guest_console "$name"; return 1
  fi
}
guest_console() { tail -n "${2:-30}" "/var/log/xen/console/guest-$1.log" 2>/dev/null | sed "s/^/INFO: $1 console: /"; }
guest_destroy() { xl destroy "$1" >/dev/null 2>&1; }

# guest_run NAME CMD: runs a shell command inside the guest (via its hooks); prints
# "<exit code> <output>"; returns 1 if the guest did not answer within 150 s
guest_run() {
  local d; d=$(dp "$1")
  xenstore-rm "$d/data/labr/run" 2>/dev/null
  xenstore-write "$d/data/lab/run" "$2"
  wait_until 150 xsr "$d/data/labr/run" >/dev/null || return 1
  xsr "$d/data/labr/run" | sed 's/\\n/\n/g'   # xenstore-read shows newlines as \n
}
# guest_hog NAME MIB: asks the guest to pin MIB of tmpfs (0 frees it)
guest_hog() { local d; d=$(dp "$1"); xenstore-rm "$d/data/labr/grow_ms" 2>/dev/null; xenstore-rm "$d/data/labr/hog" 2>/dev/null; xenstore-write "$d/data/lab/hog" "$2"; }
hog_done() { xsr "$(dp "$1")/data/labr/hog" | grep -q '^done'; }
# guest_anon NAME MIB[@RATE]: the same with anonymous memory (a node process; 0 ends it)
guest_anon() { local d; d=$(dp "$1"); xenstore-rm "$d/data/labr/anon" 2>/dev/null; xenstore-write "$d/data/lab/anon" "$2"; }
anon_done() { xsr "$(dp "$1")/data/labr/anon" | grep -q '^done'; }

# the xmem service: manager_start [CONFIG_JSON] runs `xmem run` in the background
manager_start() {
  local cfg=${1:-}; [ -n "$cfg" ] || cfg='{}'
  printf '%s\n' "$cfg" > /tmp/xmem.json
  MGR_LOG=/tmp/xmem-$SCEN.log   # not on 9p directly: writes there can block (copied at stop)
  # NODE_OPTIONS as dom0/systemd/xmem.service sets it (V8's gc() for service.gcBetweenPasses)
  NODE_OPTIONS=--expose-gc $XMEM run --config /tmp/xmem.json >> "$MGR_LOG" 2>&1 &
  MGR_PID=$!
  # up = its state socket answers (the first pass is done); node starts slowly under emulation
  if wait_until 180 status_json; then info "xmem run up after ${WAITED_MS} ms (pid $MGR_PID, log lab/out/${MGR_LOG#/tmp/})"
  else fail "xmem run not answering after ${WAITED_MS} ms: $(head -c 300 /tmp/status.err)"; manager_tail; manager_stop; return 1; fi
  # the unit's environment turns the collector on (the default config wants it)
  case "$cfg" in *gcBetweenPasses*) ;; *)
    grep -q '"gcBetweenPasses":"on"' "$MGR_LOG" || { fail "xmem run: young-generation GC between passes is not on: $(grep -o '"gcBetweenPasses":"[^"]*"' "$MGR_LOG" | tail -1)"; manager_stop; return 1; } ;;
  esac
}
manager_stop() {
  [ -n "${MGR_PID:-}" ] || return 0
  kill -TERM "$MGR_PID" 2>/dev/null
  wait_until 20 eval '! kill -0 $MGR_PID 2>/dev/null' || kill -KILL "$MGR_PID" 2>/dev/null
  wait "$MGR_PID" 2>/dev/null; MGR_RC=$?; MGR_PID=
  timeout 20 cp "$MGR_LOG" "$OUT/" 2>/dev/null
}
manager_tail() { tail -n "${1:-20}" "$MGR_LOG" 2>/dev/null | cut -c1-1500 | sed 's/^/INFO: xmem log: /'; }

# lab_pair: the two guests every scenario shares (booted in parallel once, reused after),
# their agents running from boot
lab_pair() {
  local g
  for g in g1 g2; do
    case "$(state $g)" in *c*) info "$g had crashed: booting it again"; guest_destroy $g ;; esac
    [ -n "$(domid $g)" ] || guest_create $g 384 1536 "${1:-}" &
  done
  wait
  [ -n "$(domid g1)" ] && [ -n "$(domid g2)" ]
}

# Agents: wait until every named guest has published an xmem report (data/xmem)
agents_up() { local g; for g in "$@"; do xsr "$(dp "$g")/data/xmem" >/dev/null || return 1; done; }
need_agents() {
  local g; for g in "$@"; do agents_up "$g" || xenstore-write "$(dp "$g")/data/lab/agent" start; done
  if wait_until 120 agents_up "$@"; then return 0; fi
  for g in "$@"; do agents_up "$g" || { fail "$g: no xmem agent report (data/xmem) after 120 s"; guest_console "$g"; }; done
  return 1
}
# status_json: the service's state (as xmem status --json, but waiting up to 30 s) into /tmp/status.json
status_json() { node /opt/xmem/bundle/test/xen/state.js 30000 > /tmp/status.json 2>/tmp/status.err; }
# vm_field NAME EXPR: a JS expression over `v` (the VM's entry in the state) from /tmp/status.json
vm_field() { node -e 'const s=JSON.parse(require("fs").readFileSync("/tmp/status.json","utf8"));const v=s.vms.find(x=>x.name===process.argv[1]);console.log(v?eval(process.argv[2]):"")' "$1" "$2"; }
# avail_mib NAME: MemAvailable from the guest's last agent report, MiB
avail_mib() { xsr "$(dp "$1")/data/xmem" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(Math.round(JSON.parse(s).avail/1024)))'; }
free_mib() { xl info | awk '/^free_memory/{print $3}'; }
snapshot_line() { echo "g1 $(mem g1)/$(target_mib g1) MiB, g2 $(mem g2)/$(target_mib g2) MiB (xl list/target), free $(free_mib) MiB"; }
# steady NAME...: no target of these guests moved during the last 3 s
steady() {
  local g a b; a=$(for g in "$@"; do target_mib "$g"; done); sleep 3; b=$(for g in "$@"; do target_mib "$g"; done)
  [ "$a" = "$b" ]
}
# settled NAME...: every guest's allocation has reached its target, and no target moved more
# than 8 MiB in 10 s (a moderated shrink moves a target in steps seconds apart, and the balloon
# follows each one; probing's 1 % nudges are allowed)
settled() {
  local g a=() i=0
  for g in "$@"; do mem_near "$g" "$(target_mib "$g")" 8 || return 1; a+=("$(target_mib "$g")"); done
  sleep 10
  for g in "$@"; do near "$(target_mib "$g")" "${a[$i]}" 8 && mem_near "$g" "$(target_mib "$g")" 8 || return 1; i=$((i + 1)); done
}
