#!/usr/bin/env bash
# Installs Redis from the OS packages when it is missing: redis-server for
# the tests' own instances and redis-tools for redis-cli, which creates the
# test cluster (redis-cli --cluster create). The tests start and stop their
# instances themselves; this script only makes the binaries available.
# Idempotent: does nothing when both binaries are present.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scripts/redis.sh: redis-server is missing and apt-get is not available; install Redis (>= 6) by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
# The package may start a system-wide instance on 6379; the tests never use
# it (they pick their own loopback ports), so it is left as the OS set it.
redis-server --version
