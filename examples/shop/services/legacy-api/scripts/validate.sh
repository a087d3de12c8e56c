#!/bin/sh
# ValidateService - the deployment succeeds on this server only if legacy-api answers its health check
# within 15 seconds (and fails at once when the process started by start.sh has exited). (In the sandbox's loopback network an instance's address is DEPLOYFW_TASK_ADDRESS;
# it is unset on a server, where the check asks 127.0.0.1.)
set -eu
ROOT="${DEPLOYFW_INSTANCE_ROOT:-}"
URL="http://${DEPLOYFW_TASK_ADDRESS:-127.0.0.1}:8080/health"
if python3 - "$URL" "$ROOT/var/run/legacy-api.pid" <<'PY'
import os, sys, time, urllib.request

url, pidfile = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 15
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            print(f"legacy-api answers on {url}: {answer.read().decode()}")
            sys.exit(0)
    except OSError:
        try:
            os.kill(int(open(pidfile).read()), 0)
        except (OSError, ValueError):
            print("legacy-api is not running")
            sys.exit(1)
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.2)
PY
then
  exit 0
fi
echo "legacy-api does not answer on $URL; last lines of its log:"
tail -n 5 "$ROOT/var/log/legacy-api/app.log" 2>/dev/null || true
exit 1
