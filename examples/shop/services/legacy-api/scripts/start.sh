#!/bin/sh
# ApplicationStart - start legacy-api as a long-running process. Its output goes to a log file and
# stdin is closed: CodeDeploy waits for a hook's stdout and stderr to close, so a process that kept
# them would hold the event until its timeout.
set -eu
ROOT="${DEPLOYFW_INSTANCE_ROOT:-}"
APP="$ROOT/opt/legacy-api"
cd "$APP"
set -a
. ./build.env
set +a
nohup python3 server.py >>"$ROOT/var/log/legacy-api/app.log" 2>&1 </dev/null &
echo $! >"$ROOT/var/run/legacy-api.pid"
echo "legacy-api started (pid $!, revision ${SHOP_REVISION:-unknown})"
