#!/usr/bin/env bash
# The whole test suite: installs Synapse into .local/ (first run only, ~1 min), builds
# the binaries the end-to-end tests start, then runs every test of the workspace.
# Needs only the Rust toolchain and Python 3 with venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-synapse.sh
cargo build --workspace --bins
cargo test --workspace "$@"
