#!/usr/bin/env bash
# Opens an SSH tunnel from this machine to the Inngest dashboard on the VM. Port 8288 is never
# public (it is published on the VM's 127.0.0.1 only), so this tunnel is the way in.
# Written for bash 3.2 too (macOS): no associative arrays, no mapfile, no empty-array expansion under -u.
set -euo pipefail

readonly REMOTE_PORT=8288
readonly EXIT_TUNNEL=1 EXIT_INPUT=2

usage() {
  cat <<'EOF'
Usage: scripts/tunnel.sh [options]

Opens an SSH tunnel to the Inngest dashboard (port 8288 on the VM) and prints the URL to open.
Ctrl-C closes the tunnel. With no options, the VM name, zone and project come from the stack
outputs (`pulumi stack output --json`); any option or environment variable overrides them, and
pulumi is not needed when all three are given.

Options (environment variable in brackets):
  --stack NAME     Pulumi stack to read outputs from (default: the selected stack) [KIT_STACK]
  --vm NAME        VM instance name (output vm_name)                              [KIT_VM]
  --zone ZONE      VM zone, e.g. us-central1-a (output zone)                      [KIT_ZONE]
  --project ID     Google Cloud project (output project)                          [KIT_PROJECT]
  --port PORT      local port for the dashboard (default 8288)                    [KIT_PORT]
  --no-iap         connect directly to the VM's external IP instead of through IAP
                   (only when your address range is allowed to reach port 22)      [KIT_NO_IAP=1]
  -h, --help       show this help

It runs:
  gcloud compute ssh VM --zone ZONE --project ID --tunnel-through-iap -- -N -L PORT:localhost:8288

Before connecting it checks that gcloud is installed and logged in, that pulumi is installed (when
an output is needed), that the stack has outputs, and that the local port is free (naming the
process holding it, with `ss`, or `lsof` where there is no `ss`).

Exit status: 0 after Ctrl-C, 2 for bad options or a failed check (nothing was started),
1 when the tunnel could not be opened or closed on its own.
EOF
}

problems=()
problem() { problems+=("$1"); }

fail_if_problems() {
  if [ "${#problems[@]}" -gt 0 ]; then
    local line
    echo "error: the tunnel was not opened:" >&2
    for line in "${problems[@]}"; do
      printf '  - %s\n' "$line" >&2
    done
    exit "$EXIT_INPUT"
  fi
}

usage_error() {
  printf 'error: %s\nRun scripts/tunnel.sh --help for the options.\n' "$1" >&2
  exit "$EXIT_INPUT"
}

stack="${KIT_STACK:-}"
vm="${KIT_VM:-}"
zone="${KIT_ZONE:-}"
project="${KIT_PROJECT:-}"
port="${KIT_PORT:-8288}"
no_iap="${KIT_NO_IAP:-}"

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then
    usage_error "$1 needs a value"
  fi
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --stack) need_value "$@"; stack="$2"; shift 2 ;;
    --vm) need_value "$@"; vm="$2"; shift 2 ;;
    --zone) need_value "$@"; zone="$2"; shift 2 ;;
    --project) need_value "$@"; project="$2"; shift 2 ;;
    --port) need_value "$@"; port="$2"; shift 2 ;;
    --stack=* | --vm=* | --zone=* | --project=* | --port=*)
      name="${1%%=*}"
      set -- "$name" "${1#*=}" "${@:2}"
      ;;
    --no-iap) no_iap=1; shift ;;
    *) usage_error "unknown option '$1'" ;;
  esac
done

case "$no_iap" in
  "" | 0 | 1) ;;
  *) problem "KIT_NO_IAP is '$no_iap': set it to 1 (connect directly) or leave it unset" ;;
esac
case "$port" in
  '' | *[!0-9]*) problem "local port '$port' is not a number: pass --port with a number from 1024 to 65535" ;;
  *)
    if [ "${#port}" -gt 5 ] || [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
      problem "local port $port is out of range: pass --port with a number from 1024 to 65535"
    fi
    ;;
esac

# --- gcloud -------------------------------------------------------------------------------------
if ! command -v gcloud >/dev/null 2>&1; then
  problem "gcloud is not installed: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then run 'gcloud auth login'"
elif [ -z "$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null || true)" ]; then
  problem "gcloud is not logged in: run 'gcloud auth login'"
fi

# --- where the VM is: flags and environment first, the stack outputs for the rest -----------------
read_outputs() {
  # Prints vm_name, zone and project, one per line (empty when absent). Exit 3: no outputs; 4: not JSON.
  python3 -c '
import json, sys
try:
    outputs = json.load(sys.stdin)
except ValueError:
    sys.exit(4)
if not isinstance(outputs, dict) or not outputs:
    sys.exit(3)
for name in ("vm_name", "zone", "project"):
    value = outputs.get(name)
    print(value if isinstance(value, str) else "")
'
}

if [ -z "$vm" ] || [ -z "$zone" ] || [ -z "$project" ]; then
  which_stack="${stack:-the selected stack}"
  if ! command -v pulumi >/dev/null 2>&1; then
    problem "pulumi is not installed, and it is needed to read the VM's name, zone and project from $which_stack: install it (https://www.pulumi.com/docs/install/), or pass --vm, --zone and --project"
  else
    pulumi_error="$(mktemp)"
    status=0
    outputs_json="$(pulumi stack output --json ${stack:+--stack "$stack"} 2>"$pulumi_error")" || status=$?
    if [ "$status" -ne 0 ]; then
      problem "pulumi stack output failed for $which_stack (exit status $status): $(tail -n 1 "$pulumi_error"). Pass --stack NAME or run 'pulumi stack select'"
    else
      status=0
      from_outputs="$(printf '%s' "$outputs_json" | read_outputs)" || status=$?
      case "$status" in
        0)
          { IFS= read -r out_vm; IFS= read -r out_zone; IFS= read -r out_project; } <<<"$from_outputs"
          vm="${vm:-$out_vm}"
          zone="${zone:-$out_zone}"
          project="${project:-$out_project}"
          missing=""
          [ -n "$vm" ] || missing="$missing vm_name"
          [ -n "$zone" ] || missing="$missing zone"
          [ -n "$project" ] || missing="$missing project"
          if [ -n "$missing" ]; then
            problem "$which_stack has no output(s):$missing. Run 'pulumi up', or pass --vm, --zone and --project"
          fi
          ;;
        3) problem "$which_stack has no outputs: run 'pulumi up' first" ;;
        *) problem "pulumi stack output --json for $which_stack did not print JSON" ;;
      esac
    fi
    rm -f "$pulumi_error"
  fi
fi

# --- the local port -----------------------------------------------------------------------------
port_is_free() {
  # SO_REUSEADDR as ssh sets it, so a connection lingering in TIME_WAIT does not count as busy.
  python3 -c '
import socket, sys
probe = socket.socket()
probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    probe.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}

port_holder() {
  local listing=""
  if command -v ss >/dev/null 2>&1; then
    listing="$(ss -Hltnp "sport = :$1" 2>/dev/null || true)"
    case "$listing" in
      *users:\(\(*)
        listing="${listing#*users:((\"}"
        local name="${listing%%\"*}" pid="${listing#*pid=}"
        printf '%s (pid %s, found with ss)' "$name" "${pid%%,*}"
        return
        ;;
    esac
  elif command -v lsof >/dev/null 2>&1; then
    listing="$(lsof -nP -iTCP:"$1" -sTCP:LISTEN -Fpc 2>/dev/null || true)"
    if [ -n "$listing" ]; then
      local pid name
      pid="$(printf '%s\n' "$listing" | sed -n 's/^p//p' | head -n 1)"
      name="$(printf '%s\n' "$listing" | sed -n 's/^c//p' | head -n 1)"
      printf '%s (pid %s, found with lsof)' "$name" "$pid"
      return
    fi
  fi
  printf 'a process this user cannot see (try: sudo ss -ltnp "sport = :%s")' "$1"
}

case "$port" in
  '' | *[!0-9]*) ;;
  *)
    if [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] && ! port_is_free "$port"; then
      problem "local port $port is in use by $(port_holder "$port"): stop that process or choose another port with --port"
    fi
    ;;
esac

fail_if_problems

# --- the tunnel ---------------------------------------------------------------------------------
route=(--tunnel-through-iap)
if [ "$no_iap" = 1 ]; then
  route=()
fi

child=""
# shellcheck disable=SC2317 # reached from the INT/TERM trap, which shellcheck does not follow
descendants() {
  local pid
  for pid in $(pgrep -P "$1" 2>/dev/null || true); do
    descendants "$pid"
    echo "$pid"
  done
}

# shellcheck disable=SC2317 # the INT/TERM trap
close_tunnel() {
  trap - INT TERM
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    # gcloud starts ssh as its own child: stop the whole tree, not only gcloud, or ssh lingers.
    local pids tries=0
    pids="$(descendants "$child") $child"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -TERM $pids 2>/dev/null || true
    while kill -0 "$child" 2>/dev/null && [ "$tries" -lt 20 ]; do
      sleep 0.1
      tries=$((tries + 1))
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  echo "" >&2
  echo "Tunnel closed." >&2
  exit 0
}
trap close_tunnel INT TERM

echo "Inngest dashboard: http://localhost:$port  (tunnel to $vm in $zone, project $project; Ctrl-C to close)"
# In the background so that this shell can run its trap at once on Ctrl-C; stdin passed on
# explicitly, because bash would give a background command /dev/null and gcloud may prompt.
gcloud compute ssh "$vm" --zone "$zone" --project "$project" ${route[@]+"${route[@]}"} -- -N -L "$port:localhost:$REMOTE_PORT" <&0 &
child=$!
status=0
wait "$child" || status=$?
trap - INT TERM
echo "error: the tunnel closed: gcloud compute ssh exited with status $status" >&2
exit "$EXIT_TUNNEL"
