#!/usr/bin/env bash
# Install Synapse into a private venv for the end-to-end tests.
# Idempotent: does nothing if the venv can already `import synapse`.
# Usage: scripts/setup-synapse.sh   (venv: $RETROBRIDGE_SYNAPSE_VENV or <repo>/.local/synapse-venv)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RETROBRIDGE_SYNAPSE_VENV:-$repo/.local/synapse-venv}"
python="${PYTHON:-python3}"

fail() {
    echo "setup-synapse: ERROR: $*" >&2
    exit 1
}

mkdir -p "$repo/.local"
# Several test binaries may call us at once; serialise them so only one installs.
exec 9>"$repo/.local/setup-synapse.lock"
echo "setup-synapse: waiting for lock $repo/.local/setup-synapse.lock"
flock 9 || fail "could not take lock"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import synapse' 2>/dev/null; then
    echo "setup-synapse: synapse already installed in $venv"
    exit 0
fi

command -v "$python" >/dev/null || fail "$python not found"
if [ ! -x "$venv/bin/python" ]; then
    echo "setup-synapse: creating venv $venv"
    "$python" -m venv "$venv" || fail "python -m venv $venv failed"
fi

echo "setup-synapse: pip install matrix-synapse (this takes a while)"
start=$(date +%s)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip \
    || fail "pip upgrade failed"
"$venv/bin/python" -m pip install --disable-pip-version-check matrix-synapse \
    || fail "pip install matrix-synapse failed"
"$venv/bin/python" -c 'import synapse' || fail "synapse still not importable after install"
version=$("$venv/bin/python" -c 'import synapse; print(synapse.__version__)')
echo "setup-synapse: installed synapse $version in $(($(date +%s) - start))s"
