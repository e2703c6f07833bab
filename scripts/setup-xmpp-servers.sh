#!/usr/bin/env bash
# Install the XMPP servers the XMPP end-to-end tests run against: Prosody and ejabberd,
# Debian's packages. Idempotent and quick: does nothing for a server already installed.
# The tests run their own instances (own config, ports and data under a temp folder);
# this script only installs the programs (Debian does not start their services here).
# Installing needs apt-get and root (CI runs as root on Debian); a first install takes
# about 10 s for Prosody and 40 s for ejabberd (it brings Erlang), plus `apt-get update`
# when the package lists are missing or stale.
# Usage: scripts/setup-xmpp-servers.sh [prosody] [ejabberd]   (both when none is named)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(prosody ejabberd)

fail() {
    echo "setup-xmpp-servers: ERROR: $*" >&2
    exit 1
}

# The programs each package must put on the PATH.
programs() {
    case "$1" in
        prosody) echo "prosody prosodyctl" ;;
        ejabberd) echo "ejabberdctl erl" ;;
        *) fail "unknown server '$1' (prosody or ejabberd)" ;;
    esac
}

for server in "${servers[@]}"; do
    case "$server" in
        prosody | ejabberd) ;;
        *) fail "unknown server '$server' (prosody or ejabberd)" ;;
    esac
done

installed() {
    local program
    for program in $(programs "$1"); do
        command -v "$program" >/dev/null 2>&1 || return 1
    done
}

# What is installed, for the log. (`prosody --version` does not exist in 0.12: it
# starts a server; `prosodyctl about` prints "Prosody <version>" first.)
version() {
    case "$1" in
        prosody) prosodyctl about 2>/dev/null | head -n 1 ;;
        ejabberd) echo "ejabberd $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null)" ;;
    esac
}

missing() {
    local server
    for server in "${servers[@]}"; do
        if installed "$server"; then
            echo "setup-xmpp-servers: $(version "$server") already installed" >&2
        else
            echo "$server"
        fi
    done
}

todo=($(missing))
[ ${#todo[@]} -gt 0 ] || exit 0

mkdir -p "$repo/.local"
# Several test binaries may call us at once; serialise them so only one installs.
exec 9>"$repo/.local/setup-xmpp-servers.lock"
flock 9 || fail "could not take lock $repo/.local/setup-xmpp-servers.lock"
todo=($(missing))
[ ${#todo[@]} -gt 0 ] || exit 0

command -v apt-get >/dev/null 2>&1 \
    || fail "${todo[*]} missing and apt-get is not available: install Prosody 0.12 or newer (prosody and prosodyctl on the PATH) and ejabberd 23 or newer (ejabberdctl), then run the tests again"
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    fail "${todo[*]} missing and installing needs root: run 'sudo apt-get install -y ${todo[*]}' (or run this script as root)"
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
echo "setup-xmpp-servers: apt-get install -y ${todo[*]}"
start=$(date +%s)
if ! "${apt[@]}" install -y "${todo[@]}"; then
    # A fresh machine may have no package lists, or lists older than the mirror.
    echo "setup-xmpp-servers: install failed; running apt-get update and trying again"
    "${apt[@]}" update || fail "apt-get update failed"
    "${apt[@]}" install -y "${todo[@]}" || fail "apt-get install -y ${todo[*]} failed"
fi
for server in "${todo[@]}"; do
    installed "$server" || fail "$(programs "$server") still missing after apt-get install $server"
    echo "setup-xmpp-servers: installed $(version "$server")"
done
echo "setup-xmpp-servers: took $(($(date +%s) - start))s"
