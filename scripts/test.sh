#!/usr/bin/env bash
# The whole test suite: installs Synapse into .local/ (first run only, ~1 min) and
# Prosody and ejabberd from Debian's packages when missing (apt-get, as root; ~50 s), builds the
# binaries the end-to-end tests start, then runs every test of the workspace.
# Needs the Rust toolchain, Python 3 with venv, and apt-get (as root) for the XMPP servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-synapse.sh
scripts/setup-xmpp-servers.sh
cargo build --workspace --bins
# Two cargo runs, not one: the bridge's XMPP components and the tests' XMPP client both
# use xmpp-parsers, whose stanza namespace is a compile-time feature (component:
# jabber:component:accept; client: jabber:client), and cargo unifies features across
# the packages of one run. The end-to-end crate does not link the bridge (it runs the
# binary), so on its own it gets the client namespace.
cargo test --workspace --exclude e2e-tests "$@"
cargo test -p e2e-tests "$@"
