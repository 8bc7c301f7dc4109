#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu host for Honeyphone: host packages, a running
# Docker engine, and the project's .venv.  Idempotent: each step is skipped when
# already done.  When it cannot do a step (not root, no apt), it says exactly
# what is missing and how to get it, and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v adb >/dev/null 2>&1 || need_pkgs+=(adb)
command -v mmdebstrap >/dev/null 2>&1 || need_pkgs+=(mmdebstrap)
command -v tcpdump >/dev/null 2>&1 || need_pkgs+=(tcpdump)
command -v strace >/dev/null 2>&1 || need_pkgs+=(strace)
command -v nsenter >/dev/null 2>&1 || need_pkgs+=(util-linux)
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)  # deploy/compose.yaml and its test
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)  # renders report.html in the browser test
# The PostgreSQL store's tests start their own server; its binaries live in
# /usr/lib/postgresql/<version>/bin, not on PATH.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_pkgs+=(postgresql)
[ "${HONEYPHONE_WITH_NODE:-0}" = 1 ] && ! command -v npm >/dev/null 2>&1 && need_pkgs+=(nodejs npm)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    die "missing host packages: ${need_pkgs[*]}. Run as root, or install them: sudo apt-get install -y ${need_pkgs[*]}"
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing host packages: ${need_pkgs[*]}, and this is not a Debian/Ubuntu host (no apt-get). Install them with your package manager."
  say "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# A Docker engine that answers.
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    die "no Docker engine answers. Start it (sudo systemctl start docker) or add yourself to the docker group."
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    say "started docker with systemd"
  else
    # nohup, in its own session; its PID goes to /run/honeyphone-dockerd.pid and
    # the exact command line to /run/honeyphone-dockerd.cmd, so that
    # scripts/restart-dockerd.sh (the "Docker daemon restarted" fault test) can
    # restart this very daemon the same way.
    say "starting dockerd in the background (log: /var/log/honeyphone-dockerd.log)"
    scripts/restart-dockerd.sh --start || die "dockerd did not come up; see /var/log/honeyphone-dockerd.log"
  fi
fi

# The project's virtualenv.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.honeyphone-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing Python dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi
say "host ready"
