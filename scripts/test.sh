#!/usr/bin/env bash
# The whole test suite: unit tests of every crate and the end-to-end tests, which drive the
# built `xp` binary with the real plugins loaded from disk.
#
#   scripts/test.sh            # build everything, then run every test
#   scripts/test.sh submit     # extra arguments go to `cargo test` (here: a name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: cargo is missing; install Rust from https://rustup.rs" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 is missing; the local target runs scripts with it" >&2; exit 1; }

# Real services the end-to-end tests talk to (a Docker engine and locally built images, sshd,
# Spark, and a browser for the web view). Reuses what is up; stops, when the tests end, only
# what it started here.
export XP_SERVICES_OWNER="test.sh-$$"
scripts/services.sh start docker ssh spark browser
trap 'scripts/services.sh stop docker ssh spark browser' EXIT

# The end-to-end tests run target/debug/xp and the plugin libraries beside it: build them all
# first (`cargo test` alone builds only what the test binaries link).
cargo build --workspace --all-targets
# The plugin API and SDK are crates third parties depend on: they must package (and build from
# the package) on their own, outside this workspace.
cargo package --quiet --allow-dirty -p xp-plugin-api -p xp-plugin-sdk
cargo test --workspace --no-fail-fast "$@"
