#!/usr/bin/env bash
# The bridge's main job on one machine: a local Synapse, the legacy simulators (ICQ, MSN,
# mig33) and the bridge, wired together. Once all three are up, prints the homeserver URL
# and a demo user to log in with from any Matrix client. Ctrl-C stops it all.
#
# Ports, all on 127.0.0.1, checked before anything starts; each variable changes one, e.g.
# `RETROBRIDGE_DEMO_ICQ_PORT=4001 ./scripts/demo.sh`:
#   RETROBRIDGE_DEMO_SYNAPSE_PORT   8008      Synapse (RETROBRIDGE_DEMO_PORT, its old name, works too)
#   RETROBRIDGE_DEMO_BRIDGE_PORT    29330     the bridge's appservice endpoint
#   RETROBRIDGE_DEMO_ICQ_PORT       4000/udp  ICQ simulator
#   RETROBRIDGE_DEMO_MSN_PORT       1863      MSN dispatch server
#   RETROBRIDGE_DEMO_MSN_SB_PORT    1864      MSN switchboard
#   RETROBRIDGE_DEMO_MSN_NS_PORT    1865      MSN notification server
#   RETROBRIDGE_DEMO_MSN_HTTP_PORT  1880      MSN Passport (HTTP)
#   RETROBRIDGE_DEMO_MIG33_PORT     9119      mig33 simulator
#   RETROBRIDGE_DEMO_XMPP_PORT      5222      Prosody's client port (with RETROBRIDGE_DEMO_XMPP=1)
#   RETROBRIDGE_DEMO_COMPONENT_PORT 5347      Prosody's component port (with RETROBRIDGE_DEMO_XMPP=1)
# Other settings:
#   RETROBRIDGE_DEMO_XMPP=1   also start Prosody (installed by scripts/setup-xmpp-servers.sh when
#                             missing) with the bridge's components and a user demo@localhost
#                             (password demo): the XMPP front beside the Matrix one
#   RETROBRIDGE_DEMO_DIR      state and logs (default .local/demo, git-ignored); synapse.log,
#                             sim.log and bridge.log are appended to at each start
#   RETROBRIDGE_DEMO_BIN_DIR  run the retrobridge and legacy-sim binaries of this folder
#                             instead of building them (the tests do)
#   RETROBRIDGE_SYNAPSE_VENV  the Synapse venv (default .local/synapse-venv)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

synapse_port="${RETROBRIDGE_DEMO_SYNAPSE_PORT:-${RETROBRIDGE_DEMO_PORT:-8008}}"
bridge_port="${RETROBRIDGE_DEMO_BRIDGE_PORT:-29330}"
icq_port="${RETROBRIDGE_DEMO_ICQ_PORT:-4000}"
msn_port="${RETROBRIDGE_DEMO_MSN_PORT:-1863}"
msn_sb_port="${RETROBRIDGE_DEMO_MSN_SB_PORT:-1864}"
msn_ns_port="${RETROBRIDGE_DEMO_MSN_NS_PORT:-1865}"
msn_http_port="${RETROBRIDGE_DEMO_MSN_HTTP_PORT:-1880}"
mig33_port="${RETROBRIDGE_DEMO_MIG33_PORT:-9119}"
xmpp="${RETROBRIDGE_DEMO_XMPP:-}"
xmpp_port="${RETROBRIDGE_DEMO_XMPP_PORT:-5222}"
component_port="${RETROBRIDGE_DEMO_COMPONENT_PORT:-5347}"
demo="${RETROBRIDGE_DEMO_DIR:-$repo/.local/demo}"
venv="${RETROBRIDGE_SYNAPSE_VENV:-$repo/.local/synapse-venv}"
python="$venv/bin/python"

# Every port is free, or the demo says which is not and how to choose another.
python3 - <<EOF
import socket, sys
ports = [  # what, variable, port, protocol
    ("Synapse", "RETROBRIDGE_DEMO_SYNAPSE_PORT", "$synapse_port", "tcp"),
    ("the bridge", "RETROBRIDGE_DEMO_BRIDGE_PORT", "$bridge_port", "tcp"),
    ("the ICQ simulator", "RETROBRIDGE_DEMO_ICQ_PORT", "$icq_port", "udp"),
    ("the MSN dispatch server", "RETROBRIDGE_DEMO_MSN_PORT", "$msn_port", "tcp"),
    ("the MSN switchboard", "RETROBRIDGE_DEMO_MSN_SB_PORT", "$msn_sb_port", "tcp"),
    ("the MSN notification server", "RETROBRIDGE_DEMO_MSN_NS_PORT", "$msn_ns_port", "tcp"),
    ("MSN Passport", "RETROBRIDGE_DEMO_MSN_HTTP_PORT", "$msn_http_port", "tcp"),
    ("the mig33 simulator", "RETROBRIDGE_DEMO_MIG33_PORT", "$mig33_port", "tcp"),
]
if "$xmpp":
    ports += [
        ("Prosody's client port", "RETROBRIDGE_DEMO_XMPP_PORT", "$xmpp_port", "tcp"),
        ("Prosody's component port", "RETROBRIDGE_DEMO_COMPONENT_PORT", "$component_port", "tcp"),
    ]

def sock(proto):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if proto == "tcp":  # as the servers do: a closed connection's TIME_WAIT is no conflict
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return s

def free_port(proto):
    with sock(proto) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

ok, used = True, {}
for what, var, port, proto in ports:
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        print(f"demo: {var}={port!r} is not a port number (1-65535)", file=sys.stderr)
        ok = False
        continue
    if (port, proto) in used:
        print(f"demo: {what} and {used[port, proto]} would both use port {port}/{proto}: change {var}", file=sys.stderr)
        ok = False
        continue
    used[port, proto] = what
    with sock(proto) as s:
        try:
            s.bind(("127.0.0.1", int(port)))
        except OSError as e:
            print(f"demo: port {port}/{proto}, for {what}, is already in use ({e.strerror}): another program, "
                  f"or a demo still running, has it.\n"
                  f"demo: stop it, or choose another port, e.g. {var}={free_port(proto)} ./scripts/demo.sh",
                  file=sys.stderr)
            ok = False
sys.exit(0 if ok else 1)
EOF

scripts/setup-synapse.sh
[ -z "$xmpp" ] || scripts/setup-xmpp-servers.sh prosody
if [ -n "${RETROBRIDGE_DEMO_BIN_DIR:-}" ]; then
    bin="$RETROBRIDGE_DEMO_BIN_DIR"
else
    echo "demo: building the bridge and the simulators"
    cargo build --workspace --bins
    bin="$repo/target/debug"
fi

mkdir -p "$demo/synapse"
# The bridge's and the simulators' configs, with the chosen ports.
stale_registration=$("$python" - "$demo" "$synapse_port" "$bridge_port" "$icq_port" "$msn_port" \
    "$msn_sb_port" "$msn_ns_port" "$msn_http_port" "$mig33_port" "$component_port" "${xmpp:+1}" <<'PY'
import os, sys, yaml
demo = sys.argv[1]
synapse, bridge, icq, msn, msn_sb, msn_ns, msn_http, mig33, component = (int(p) for p in sys.argv[2:11])
xmpp = sys.argv[11] == "1"
header = "# Written by scripts/demo.sh from config/{} with the demo's ports: edit that file instead.\n"

c = yaml.safe_load(open("config/demo.yaml"))
c["homeserver"]["address"] = f"http://127.0.0.1:{synapse}"
c["appservice"]["port"] = bridge
c["appservice"]["url"] = f"http://127.0.0.1:{bridge}"
nets = c["networks"]
nets["icq"]["server"] = f"127.0.0.1:{icq}"
nets["msn"]["server"] = f"127.0.0.1:{msn}"
nets["msn"]["options"]["nexus_url"] = f"http://127.0.0.1:{msn_http}/rdr/pprdr.asp"
nets["mig33"]["server"] = f"127.0.0.1:{mig33}"
if xmpp:
    c["xmpp"] = {"domain": "localhost", "component_address": f"127.0.0.1:{component}", "secret": "demo-component-secret"}
    c["permissions"]["xmpp:localhost"] = "user"
with open(f"{demo}/config.yaml", "w") as f:
    f.write(header.format("demo.yaml") + yaml.safe_dump(c, sort_keys=False))

s = yaml.safe_load(open("config/sim.demo.yaml"))
s["icq"]["listen"] = f"127.0.0.1:{icq}"
s["msn"].update(dispatch_port=msn, switchboard_port=msn_sb, notification_port=msn_ns, http_port=msn_http)
s["mig33"]["listen"] = f"127.0.0.1:{mig33}"
with open(f"{demo}/sim.yaml", "w") as f:
    f.write(header.format("sim.demo.yaml") + yaml.safe_dump(s, sort_keys=False))

# A registration for another bridge port would send Synapse's transactions elsewhere.
registration = f"{demo}/registration.yaml"
if os.path.exists(registration):
    print("yes" if yaml.safe_load(open(registration)).get("url") != c["appservice"]["url"] else "no")
else:
    print("missing")
PY
)
case "$stale_registration" in
    missing) "$bin/retrobridge" generate-registration -c "$demo/config.yaml" >/dev/null ;;
    yes) "$bin/retrobridge" generate-registration --force -c "$demo/config.yaml" >/dev/null ;;
esac

if [ ! -f "$demo/synapse/homeserver.yaml" ]; then
    echo "demo: generating the Synapse config"
    (cd "$demo/synapse" && "$python" -m synapse.app.homeserver --server-name localhost \
        --config-path homeserver.yaml --data-directory . --generate-config --report-stats=no >/dev/null)
fi
# (Re)write the parts the demo depends on: loopback only, our registration, no limits, and
# the log on standard error (which goes to synapse.log).
"$python" - "$demo/synapse" "$synapse_port" "$demo/registration.yaml" <<'PY'
import sys, yaml
folder, port, registration = sys.argv[1], int(sys.argv[2]), sys.argv[3]
path = f"{folder}/homeserver.yaml"
c = yaml.safe_load(open(path))
c["listeners"] = [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                   "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}]
c["app_service_config_files"] = [registration]
c["trusted_key_servers"] = []
c["suppress_key_server_warning"] = True
c["enable_registration"] = False
c["use_presence"] = True
c.setdefault("registration_shared_secret", "demo-shared-secret")
for k in ["rc_message", "rc_registration", "rc_joins", "rc_invites", "rc_login", "rc_room_creation"]:
    c.pop(k, None)
c["rc_message"] = {"per_second": 1000, "burst_count": 1000}
c["rc_joins"] = {"local": {"per_second": 1000, "burst_count": 1000}}
c["rc_invites"] = {"per_room": {"per_second": 1000, "burst_count": 1000},
                   "per_user": {"per_second": 1000, "burst_count": 1000}}
c["log_config"] = f"{folder}/log.yaml"
yaml.safe_dump(c, open(path, "w"))
yaml.safe_dump({
    "version": 1,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"level": "INFO", "handlers": ["console"]},
    "disable_existing_loggers": False,
}, open(c["log_config"], "w"))
PY

names=()
pids=()
logs=()
cmds=()
cleanup() {
    if [ "${#pids[@]}" -gt 0 ]; then
        echo
        echo "demo: stopping"
        for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOG COMMAND...: runs COMMAND in the background, appending to LOG after a
# header line; sets $since to the size of LOG before this run's lines.
start() {
    local name="$1" log="$2"
    shift 2
    echo "==== $(date '+%F %T') scripts/demo.sh starts $name ====" >>"$log"
    since=$(wc -c <"$log")
    "$@" >>"$log" 2>&1 &
    names+=("$name")
    pids+=($!)
    logs+=("$log")
    cmds+=("$(printf '%q ' "$@")")
}

# restart I: starts part I again, as `start` did.
restart() {
    local i="$1"
    echo "==== $(date '+%F %T') scripts/demo.sh restarts ${names[$i]} ====" >>"${logs[$i]}"
    # The redirection and `&` inside the eval: $! is then the part itself.
    eval "${cmds[$i]}"' >>"${logs[$i]}" 2>&1 &'
    pids[$i]=$!
    list_parts
}

# list_parts: DIR/demo.pids says which process is which part (for trying a restart).
list_parts() {
    for i in "${!pids[@]}"; do printf '%s\t%s\n' "${pids[$i]}" "${names[$i]}"; done >"$demo/demo.pids"
}

# this_run LOG SINCE: the part of LOG written by this run.
this_run() { tail -c +$(($2 + 1)) "$1" 2>/dev/null || true; }

# fail NAME LOG SINCE WHY: says why NAME is not up, with the end of its log, and stops.
fail() {
    echo "demo: $4; the end of $2:" >&2
    this_run "$2" "$3" | tail -n 20 | sed 's/^/    /' >&2
    exit 1
}

# await NAME LOG SINCE SECONDS CHECK...: waits until CHECK succeeds, while the component
# started last runs.
await() {
    local name="$1" log="$2" from="$3" seconds="$4" pid="${pids[-1]}"
    shift 4
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        kill -0 "$pid" 2>/dev/null || fail "$name" "$log" "$from" "$name stopped"
        [ "$SECONDS" -lt "$deadline" ] || fail "$name" "$log" "$from" "$name was not up after ${seconds}s"
        sleep 0.5
    done
}

synapse_healthy() {
    "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$synapse_port/health', timeout=2)" 2>/dev/null
}
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
simulators_listening() {
    this_run "$demo/sim.log" "$sim_since" | grep -q "simulator(s) running" &&
        tcp_open "$msn_port" && tcp_open "$msn_sb_port" && tcp_open "$msn_ns_port" &&
        tcp_open "$msn_http_port" && tcp_open "$mig33_port"
}
bridge_ready() {
    this_run "$demo/bridge.log" "$bridge_since" | grep -q "bot @.* ready"
}

echo "demo: starting Synapse on http://127.0.0.1:$synapse_port (log: $demo/synapse.log)"
start Synapse "$demo/synapse.log" bash -c 'cd "$1" && exec "$2" -m synapse.app.homeserver --config-path homeserver.yaml' \
    synapse "$demo/synapse" "$python"
await Synapse "$demo/synapse.log" "$since" 120 synapse_healthy

echo "demo: starting the legacy simulators (log: $demo/sim.log)"
start "the simulators" "$demo/sim.log" "$bin/legacy-sim" serve -c "$demo/sim.yaml"
sim_since=$since
await "the simulators" "$demo/sim.log" "$since" 30 simulators_listening

echo "demo: creating the Matrix user @demo:localhost"
"$python" - "$synapse_port" "$demo/synapse/homeserver.yaml" <<'PY'
import hashlib, hmac, json, sys, urllib.error, urllib.request, yaml
port, config = sys.argv[1], sys.argv[2]
secret = yaml.safe_load(open(config))["registration_shared_secret"]
url = f"http://127.0.0.1:{port}/_synapse/admin/v1/register"
nonce = json.load(urllib.request.urlopen(url))["nonce"]
mac = hmac.new(secret.encode(), b"\0".join([nonce.encode(), b"demo", b"demo", b"notadmin"]), hashlib.sha1).hexdigest()
body = json.dumps({"nonce": nonce, "username": "demo", "password": "demo", "admin": False, "mac": mac}).encode()
try:
    urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}))
except urllib.error.HTTPError as e:
    if "User ID already taken" not in e.read().decode():
        raise
PY

if [ -n "$xmpp" ]; then
    mkdir -p "$demo/prosody/data"
    cat >"$demo/prosody/prosody.cfg.lua" <<EOF
-- Written by scripts/demo.sh: a Prosody on 127.0.0.1 for the demo, without TLS.
run_as_root = true
pidfile = "$demo/prosody/prosody.pid"
data_path = "$demo/prosody/data"
certificates = "$demo/prosody"
log = { { levels = { min = "info" }, to = "file", filename = "$demo/prosody.log" } }
interfaces = { "127.0.0.1" }
c2s_ports = { $xmpp_port }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
component_interfaces = { "127.0.0.1" }
component_ports = { $component_port }
modules_disabled = { "s2s" }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "offline"; "time"; "version" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
VirtualHost "localhost"
Component "icq.localhost" component_secret = "demo-component-secret"
Component "msn.localhost" component_secret = "demo-component-secret"
Component "mig33.localhost" component_secret = "demo-component-secret"
Component "rooms.localhost" component_secret = "demo-component-secret"
EOF
    prosodyctl --config "$demo/prosody/prosody.cfg.lua" register demo localhost demo
    echo "demo: starting Prosody on 127.0.0.1:$xmpp_port (log: $demo/prosody.log)"
    start Prosody "$demo/prosody.log" prosody --config "$demo/prosody/prosody.cfg.lua" -F
    await Prosody "$demo/prosody.log" "$since" 30 tcp_open "$component_port"
fi

echo "demo: starting the bridge (log: $demo/bridge.log)"
start "the bridge" "$demo/bridge.log" bash -c 'cd "$1" && exec "$2" run -c config.yaml' bridge "$demo" "$bin/retrobridge"
bridge_since=$since
await "the bridge" "$demo/bridge.log" "$since" 120 bridge_ready

cat <<EOF

  retrobridge demo is running.

  Homeserver:  http://127.0.0.1:$synapse_port
  Matrix user: @demo:localhost   password: demo

  1. Log in with any Matrix client (Element, Cinny, nheko...) using the homeserver above.
  2. Start a direct chat with @retrobridgebot:localhost and type: help
  3. Log in to a simulated legacy account, for example:
       login icq 1001 alice1
       login msn alice@hotmail.com alice
       login mig33 alice alice
  4. Talk to yourself from the legacy side, in another terminal:
       $bin/legacy-sim icq-client --server 127.0.0.1:$icq_port --uin 1002 --password bob2 send 1001 "hi from ICQ"
       $bin/legacy-sim msn-client --server 127.0.0.1:$msn_port --nexus http://127.0.0.1:$msn_http_port/rdr/pprdr.asp --email bob@hotmail.com --password bob send alice@hotmail.com "hi from MSN"
       $bin/legacy-sim mig33-client --server 127.0.0.1:$mig33_port --user bob --password bob send alice "hi from mig33"
     and in Matrix: join mig33 lobby

$(if [ -n "$xmpp" ]; then cat <<XMPP
  XMPP: log in as demo@localhost (password demo) on 127.0.0.1:$xmpp_port (no TLS), then
       register with icq.localhost, msn.localhost or mig33.localhost (service discovery)
       with the same accounts as above; mig33 rooms: lobby%mig33@rooms.localhost

XMPP
fi)
  Logs: $demo/synapse.log, $demo/sim.log, $demo/bridge.log${xmpp:+, $demo/prosody.log}
  A part that stops is started again, so you can try the restarts the bridge rides
  out: $demo/demo.pids lists each part's process (kill the bridge's, even with -9).
  Ctrl-C stops everything; from another shell: kill \$(cat $demo/demo.pid)
  State is kept in $demo (delete it to start afresh).
EOF

echo $$ >"$demo/demo.pid"
list_parts
# Until Ctrl-C or TERM: a part that stops is started again, unless it keeps stopping.
declare -A restarts=()
while true; do
    wait -n "${pids[@]}" || true
    for i in "${!pids[@]}"; do
        kill -0 "${pids[$i]}" 2>/dev/null && continue
        now=$(date +%s)
        recent=()
        for t in ${restarts[$i]:-}; do
            if [ $((now - t)) -lt 60 ]; then recent+=("$t"); fi
        done
        if [ "${#recent[@]}" -ge 5 ]; then
            echo "demo: ${names[$i]} stopped 5 times within a minute; see ${logs[$i]}" >&2
            exit 1
        fi
        restarts[$i]="${recent[*]} $now"
        echo "demo: ${names[$i]} stopped; starting it again (log: ${logs[$i]})" >&2
        restart "$i"
    done
done
