#!/bin/sh
# ApplicationStop - runs from the revision being replaced: stop the legacy-api it started.
set -eu
ROOT="${DEPLOYFW_INSTANCE_ROOT:-}"
PIDFILE="$ROOT/var/run/legacy-api.pid"
if [ ! -f "$PIDFILE" ]; then
  echo "legacy-api is not running (no $PIDFILE)"
  exit 0
fi
PID=$(cat "$PIDFILE")
if kill "$PID" 2>/dev/null; then
  for _ in $(seq 1 50); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$PID" 2>/dev/null || true
  echo "legacy-api stopped (pid $PID)"
else
  echo "legacy-api was not running (stale pid $PID)"
fi
rm -f "$PIDFILE"
