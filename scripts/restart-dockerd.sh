#!/usr/bin/env bash
# Start, identify or restart this host's Docker engine, the way it was started.
#
#   scripts/restart-dockerd.sh            restart the engine (the "Docker daemon restarted"
#                                         fault test calls this; so can a person)
#   scripts/restart-dockerd.sh --how      print how the engine would be restarted and exit 0:
#                                         "setup-host" or "systemd"; else say why not and exit 1
#   scripts/restart-dockerd.sh --start [DOCKERD-ARG...]
#                                         start dockerd in the background and record it
#                                         (scripts/setup-host.sh calls this when no engine answers)
#
# Two kinds of engine are known:
#
# * "setup-host": the dockerd that scripts/setup-host.sh started (hosts and CI
#   without an init system).  Its PID is in /run/honeyphone-dockerd.pid and the
#   exact way it was started in /run/honeyphone-dockerd.cmd (line 1: the log
#   file; then its argv, one word a line).  It counts only while that PID is a
#   live dockerd with that argv (a PID reused by another process does not).  A
#   restart sends it SIGTERM, waits for it to exit (bounded; SIGKILL as a last
#   resort), starts it again the same way (nohup, in its own session, the same
#   argv, appending to the same log), rewrites the pidfile and waits for
#   `docker info`.  Preferred whenever the pidfile names a live dockerd.
# * "systemd": `systemctl restart docker` when docker.service is active.
#
# `service docker restart` (the SysV script /etc/init.d/docker) is deliberately
# not used: it stops only a dockerd that it started itself (its own pidfile,
# /var/run/docker-ssd.pid).  With an engine started any other way it stops
# nothing, starts a second dockerd that exits at once on /var/run/docker.pid,
# and still reports success: the engine was never restarted, or worse, a
# different daemon would be.
#
# Environment: HONEYPHONE_DOCKERD_PIDFILE, HONEYPHONE_DOCKERD_CMDFILE,
# HONEYPHONE_DOCKERD_LOG (for --start), HONEYPHONE_DOCKERD_STOP_TIMEOUT
# (seconds, default 90), HONEYPHONE_DOCKERD_START_TIMEOUT (default 60).
set -euo pipefail

PIDFILE=${HONEYPHONE_DOCKERD_PIDFILE:-/run/honeyphone-dockerd.pid}
CMDFILE=${HONEYPHONE_DOCKERD_CMDFILE:-/run/honeyphone-dockerd.cmd}
LOG=${HONEYPHONE_DOCKERD_LOG:-/var/log/honeyphone-dockerd.log}
STOP_TIMEOUT=${HONEYPHONE_DOCKERD_STOP_TIMEOUT:-90}
START_TIMEOUT=${HONEYPHONE_DOCKERD_START_TIMEOUT:-60}

say() { printf '[dockerd] %s\n' "$*" >&2; }
die() { printf '[dockerd] %s\n' "$*" >&2; exit 1; }

# The recorded argv (array `argv`) and log file (`log`), from $CMDFILE.
read_cmd() {
  [ -r "$CMDFILE" ] || return 1
  local lines
  mapfile -t lines <"$CMDFILE"
  [ "${#lines[@]}" -ge 2 ] || return 1
  log=${lines[0]}
  argv=("${lines[@]:1}")
}

# Exit 0 when PID $1 is running (not a zombie) and is dockerd with the recorded argv.
is_our_dockerd() {
  local pid=$1 state cmdline want
  [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1) || return 1
  [ "$state" != Z ] && [ "$state" != X ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  cmdline=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  want=$(printf '%s\n' "${argv[@]}")
  [ "$cmdline" = "$want" ]
}

# Exit 0 when PID $1 is gone (or a zombie, which holds nothing but its PID).
gone() {
  local state
  [ -r "/proc/$1/stat" ] || return 0
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 0
  [ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

# Print the recorded PID when it is a live dockerd started by this script; else say why not.
setup_host_pid() {
  local pid
  if [ ! -r "$PIDFILE" ]; then echo "no $PIDFILE: the engine was not started by scripts/setup-host.sh" >&2; return 1; fi
  pid=$(tr -dc '0-9' <"$PIDFILE")
  if [ -z "$pid" ]; then echo "$PIDFILE holds no PID" >&2; return 1; fi
  if ! read_cmd; then echo "$CMDFILE is missing or malformed" >&2; return 1; fi
  if ! is_our_dockerd "$pid"; then
    echo "$PIDFILE names PID $pid, which is not a running dockerd started as: ${argv[*]} (stale pidfile)" >&2
    return 1
  fi
  echo "$pid"
}

systemd_active() {
  command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker 2>/dev/null
}

wait_info() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until docker info >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# Start "${argv[@]}" under nohup in its own session (so that signals to the caller's
# process group, such as a test run's Ctrl-C, do not reach the engine), appending
# to $log; record it; wait for `docker info`.
start_recorded() {
  local pid
  printf '\n[restart-dockerd] %s: starting %s\n' "$(date -Is)" "${argv[*]}" >>"$log"
  setsid nohup "${argv[@]}" >>"$log" 2>&1 </dev/null &
  pid=$!
  # setsid forks only when it is a process-group leader, which a job of this
  # non-interactive shell never is: $! becomes dockerd itself once setsid and
  # nohup have exec'd it.  Check that (a loaded host may take a moment).
  local tries=50
  until is_our_dockerd "$pid"; do
    gone "$pid" && die "dockerd exited at once; see $log: $(tail -n 5 "$log" | tr '\n' ' ')"
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || die "PID $pid did not become the dockerd just started; see $log"
    sleep 0.1
  done
  { printf '%s\n' "$log"; printf '%s\n' "${argv[@]}"; } >"$CMDFILE.tmp" && mv "$CMDFILE.tmp" "$CMDFILE"
  echo "$pid" >"$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
  wait_info || die "dockerd (PID $pid) did not answer within ${START_TIMEOUT}s; see $log"
  say "dockerd is up (PID $pid, log $log, pidfile $PIDFILE)"
}

cmd_start() {
  if docker info >/dev/null 2>&1; then
    die "an engine already answers; not starting another (restart it with $0)"
  fi
  argv=(dockerd "$@")
  log=$LOG
  start_recorded
}

cmd_how() {
  local why
  if why=$(setup_host_pid 2>&1 >/dev/null); then echo setup-host; return 0; fi
  if systemd_active; then echo systemd; return 0; fi
  echo "cannot restart the engine here: $why, and docker.service is not active under systemd" >&2
  return 1
}

cmd_restart() {
  local pid why deadline t0
  if pid=$(setup_host_pid 2>/dev/null); then
    read_cmd  # argv and log (setup_host_pid read them in its own subshell)
    t0=$SECONDS
    say "stopping dockerd PID $pid (SIGTERM, up to ${STOP_TIMEOUT}s)"
    kill -TERM "$pid"
    deadline=$((SECONDS + STOP_TIMEOUT))
    until gone "$pid"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        say "dockerd PID $pid still runs after ${STOP_TIMEOUT}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 2
        break
      fi
      sleep 0.5
    done
    say "dockerd PID $pid exited after $((SECONDS - t0))s"
    rm -f "$PIDFILE"
    start_recorded
    say "restarted in $((SECONDS - t0))s"
    return 0
  fi
  why=$(setup_host_pid 2>&1 >/dev/null || true)
  if systemd_active; then
    say "systemctl restart docker"
    systemctl restart docker
    wait_info || die "docker did not answer within ${START_TIMEOUT}s after systemctl restart"
    return 0
  fi
  die "cannot restart the engine here: $why, and docker.service is not active under systemd"
}

case "${1:-}" in
  "") cmd_restart ;;
  --how) cmd_how ;;
  --start) shift; cmd_start "$@" ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown argument $1 (see $0 --help)" ;;
esac
