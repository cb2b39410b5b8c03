#!/bin/sh
# Container entry point of agentnet (deploy/Dockerfile).
#
# Environment:
#   AGENTNET_HOME        home folder (default /var/lib/agentnet)
#   AGENTNET_PROFILE     default | bootstrap
#   AGENTNET_CONFIG      JSON config file merged over the profile
#   AGENTNET_BOOTSTRAP   bootstrap multiaddrs, space-separated
#   AGENTNET_SHARED      a folder shared by the containers of one network
#                        (compose): a bootstrap node writes its multiaddr to
#                        <name>.addr there once it runs; every node bootstraps
#                        from the .addr files it finds (and waits for those
#                        named in AGENTNET_WAIT_FOR, space-separated names)
#   AGENTNET_NAME        this node's name in AGENTNET_SHARED (default: hostname)
#   AGENTNET_BIN         the CLI (default /opt/agentnet/bin/agentnet.js)
# Any arguments are passed to `agentnet start`. With a first argument that is
# another agentnet command (e.g. `id`, `status`), that command runs instead.
set -eu

AGENTNET="node ${AGENTNET_BIN:-/opt/agentnet/bin/agentnet.js}"
HOME_DIR="${AGENTNET_HOME:-/var/lib/agentnet}"
NAME="${AGENTNET_NAME:-$(hostname)}"

case "${1:-start}" in
  start) [ "$#" -gt 0 ] && shift ;;
  -*) ;;
  *) exec $AGENTNET "$@" ;;
esac

set -- --home "$HOME_DIR" "$@"
[ -n "${AGENTNET_PROFILE:-}" ] && set -- --profile "$AGENTNET_PROFILE" "$@"
[ -n "${AGENTNET_CONFIG:-}" ] && set -- --config "$AGENTNET_CONFIG" "$@"
for ma in ${AGENTNET_BOOTSTRAP:-}; do
  set -- "$@" --bootstrap "$ma"
done

if [ -n "${AGENTNET_SHARED:-}" ]; then
  for peer in ${AGENTNET_WAIT_FOR:-}; do
    i=0
    until [ -s "$AGENTNET_SHARED/$peer.addr" ]; do
      i=$((i + 1))
      [ "$i" -gt 120 ] && { echo "agentnet: $peer did not publish its address in $AGENTNET_SHARED" >&2; exit 1; }
      sleep 1
    done
  done
  for file in "$AGENTNET_SHARED"/*.addr; do
    [ -s "$file" ] || continue
    [ "$file" = "$AGENTNET_SHARED/$NAME.addr" ] && continue
    set -- "$@" --bootstrap "$(cat "$file")"
  done
fi

$AGENTNET start "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT

if [ -n "${AGENTNET_SHARED:-}" ] && [ "${AGENTNET_PROFILE:-}" = bootstrap ]; then
  # publish this bootstrap node's TCP multiaddr (a non-loopback one if any) once it answers
  i=0
  addr=""
  while [ -z "$addr" ] && [ "$i" -lt 60 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 1
    i=$((i + 1))
    addr=$($AGENTNET id --home "$HOME_DIR" --json 2>/dev/null | node -e '
      let s = ""
      process.stdin.on("data", d => { s += d }).on("end", () => {
        const tcp = JSON.parse(s).addresses.filter(a => a.includes("/tcp/") && !a.includes("/p2p-circuit"))
        const pick = tcp.find(a => !a.startsWith("/ip4/127.")) ?? tcp[0]
        if (pick !== undefined) process.stdout.write(pick)
      })' 2>/dev/null || true)
  done
  if [ -n "$addr" ]; then
    echo "$addr" > "$AGENTNET_SHARED/$NAME.addr.tmp" && mv "$AGENTNET_SHARED/$NAME.addr.tmp" "$AGENTNET_SHARED/$NAME.addr"
    echo "agentnet: published $addr to $AGENTNET_SHARED/$NAME.addr" >&2
  else
    echo "agentnet: could not publish this node's address to $AGENTNET_SHARED" >&2
  fi
fi

# wait for the node; a signal interrupts wait, so wait again for its exit code
set +e
wait "$pid"
code=$?
if kill -0 "$pid" 2>/dev/null; then
  wait "$pid"
  code=$?
fi
exit "$code"
