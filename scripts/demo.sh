#!/usr/bin/env bash
# The bridge's main job on one machine: a local Synapse, the legacy simulators (ICQ, MSN,
# mig33) and the bridge, wired together. Prints the homeserver URL and a demo user to log
# in with from any Matrix client. Everything lives in .local/demo/ (git-ignored); Ctrl-C
# stops it all. Ports: Synapse 8008 (RETROBRIDGE_DEMO_PORT), bridge 29330, ICQ 4000/udp,
# MSN 1863-1865 and 1880, mig33 9119.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
port="${RETROBRIDGE_DEMO_PORT:-8008}"
demo="$repo/.local/demo"
venv="${RETROBRIDGE_SYNAPSE_VENV:-$repo/.local/synapse-venv}"
python="$venv/bin/python"

scripts/setup-synapse.sh
echo "demo: building the bridge and the simulators"
cargo build --workspace --bins
bin="$repo/target/debug"

mkdir -p "$demo"
sed "s#http://127.0.0.1:8008#http://127.0.0.1:$port#" config/demo.yaml >"$demo/config.yaml"
[ -f "$demo/registration.yaml" ] || "$bin/retrobridge" generate-registration -c "$demo/config.yaml"

if [ ! -f "$demo/synapse/homeserver.yaml" ]; then
    echo "demo: generating the Synapse config"
    mkdir -p "$demo/synapse"
    "$python" -m synapse.app.homeserver --server-name localhost --config-path "$demo/synapse/homeserver.yaml" \
        --data-directory "$demo/synapse" --generate-config --report-stats=no >/dev/null
fi
# (Re)write the parts the demo depends on: loopback only, our registration, no limits.
"$python" - "$demo/synapse/homeserver.yaml" "$port" "$demo/registration.yaml" <<'PY'
import sys, yaml
path, port, registration = sys.argv[1], int(sys.argv[2]), sys.argv[3]
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
yaml.safe_dump(c, open(path, "w"))
PY

pids=()
cleanup() {
    echo
    echo "demo: stopping"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "demo: starting Synapse on http://127.0.0.1:$port (log: $demo/synapse.log)"
(cd "$demo/synapse" && exec "$python" -m synapse.app.homeserver --config-path homeserver.yaml) >"$demo/synapse.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    "$python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health')" 2>/dev/null && break
    sleep 0.5
done

echo "demo: starting the legacy simulators (log: $demo/sim.log)"
"$bin/legacy-sim" serve -c config/sim.demo.yaml >"$demo/sim.log" 2>&1 &
pids+=($!)

echo "demo: creating the Matrix user @demo:localhost"
"$python" - "$port" "$demo/synapse/homeserver.yaml" <<'PY'
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

echo "demo: starting the bridge (log: $demo/bridge.log)"
(cd "$demo" && exec "$bin/retrobridge" run -c config.yaml) >"$demo/bridge.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do grep -q "ready" "$demo/bridge.log" 2>/dev/null && break; sleep 0.5; done
grep -q "ready" "$demo/bridge.log" || { echo "demo: the bridge did not start; see $demo/bridge.log"; exit 1; }

cat <<EOF

  retrobridge demo is running.

  Homeserver:  http://127.0.0.1:$port
  Matrix user: @demo:localhost   password: demo

  1. Log in with any Matrix client (Element, Cinny, nheko...) using the homeserver above.
  2. Start a direct chat with @retrobridgebot:localhost and type: help
  3. Log in to a simulated legacy account, for example:
       login icq 1001 alice1
       login msn alice@hotmail.com alice
       login mig33 alice alice
  4. Talk to yourself from the legacy side, in another terminal:
       $bin/legacy-sim icq-client --server 127.0.0.1:4000 --uin 1002 --password bob2 send 1001 "hi from ICQ"
       $bin/legacy-sim msn-client --server 127.0.0.1:1863 --nexus http://127.0.0.1:1880/rdr/pprdr.asp --email bob@hotmail.com --password bob send alice@hotmail.com "hi from MSN"
       $bin/legacy-sim mig33-client --server 127.0.0.1:9119 --user bob --password bob send alice "hi from mig33"
     and in Matrix: join mig33 lobby

  Ctrl-C stops everything. State is kept in .local/demo/ (delete it to start afresh).
EOF
wait -n "${pids[@]}"
