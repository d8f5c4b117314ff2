#!/usr/bin/env bash
# Installs what the test suite needs beyond the Python packages in .venv: Debian packages, the
# Node packages the real-driver and real-SDK tests use, and (sections added by later work) the
# Docker engine test bed. `make test` runs it when it may install (root); `make test-deps` runs it
# on purpose. Idempotent: each step checks before it installs, so a second run costs seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: needs root for apt-get; run it as root (sudo make test-deps)" >&2
  exit 1
fi

# command -> Debian package that provides it
need_apt=()
want() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || need_apt+=("$2"); }
want redis-server redis-server
want redis-cli redis-tools
want sshd openssh-server
want shellcheck shellcheck
want ss iproute2
want pgrep procps
want curl curl
want openssl openssl
want node nodejs
want docker docker.io  # the real docker CLI runs the registry login and pull steps (tests/render/test_registry_login.py)
want npm npm
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client-15)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install.sh: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Node packages pinned by tests/node/package-lock.json (real `pg` driver, real `inngest` SDK).
if [ -f tests/node/package.json ] && [ ! -f tests/node/node_modules/.installed ]; then
  echo "install.sh: npm ci in tests/node"
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed)
fi
