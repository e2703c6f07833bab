#!/usr/bin/env bash
# Install Prosody (Debian's package) for the XMPP end-to-end tests.
# Idempotent and quick: does nothing when `prosody` and `prosodyctl` are already there.
# The tests run their own Prosody (own config, ports and data under a temp folder); this
# script only installs the program. Installing needs apt-get and root (CI runs as root on
# Debian); a first install takes about 10 s, plus `apt-get update` when the package lists
# are missing or stale.
# Usage: scripts/setup-prosody.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

fail() {
    echo "setup-prosody: ERROR: $*" >&2
    exit 1
}

installed() {
    command -v prosody >/dev/null 2>&1 && command -v prosodyctl >/dev/null 2>&1
}

# `prosodyctl about` prints "Prosody <version>" first. (`prosody --version` does not
# exist in 0.12: it starts a server.)
version() {
    prosodyctl about 2>/dev/null | head -n 1
}

if installed; then
    echo "setup-prosody: $(version) already installed"
    exit 0
fi

mkdir -p "$repo/.local"
# Several test binaries may call us at once; serialise them so only one installs.
exec 9>"$repo/.local/setup-prosody.lock"
flock 9 || fail "could not take lock $repo/.local/setup-prosody.lock"
if installed; then
    echo "setup-prosody: $(version) already installed"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || fail "Prosody is missing and apt-get is not available: install Prosody 0.12 or newer (prosody and prosodyctl on the PATH) and run the tests again"
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    fail "Prosody is missing and installing it needs root: run 'sudo apt-get install -y prosody' (or run this script as root)"
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
echo "setup-prosody: apt-get install -y prosody"
start=$(date +%s)
if ! "${apt[@]}" install -y prosody; then
    # A fresh machine may have no package lists, or lists older than the mirror.
    echo "setup-prosody: install failed; running apt-get update and trying again"
    "${apt[@]}" update || fail "apt-get update failed"
    "${apt[@]}" install -y prosody || fail "apt-get install -y prosody failed"
fi
installed || fail "prosody or prosodyctl still missing after apt-get install prosody"
echo "setup-prosody: installed $(version) in $(($(date +%s) - start))s"
