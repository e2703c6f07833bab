#!/usr/bin/env bash
# The whole test suite: installs Synapse into .local/ (first run only, ~1 min) and
# Prosody from Debian's packages when missing (apt-get, as root; ~10 s), builds the
# binaries the end-to-end tests start, then runs every test of the workspace.
# Needs the Rust toolchain, Python 3 with venv, and apt-get for Prosody.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-synapse.sh
scripts/setup-prosody.sh
cargo build --workspace --bins
cargo test --workspace "$@"
