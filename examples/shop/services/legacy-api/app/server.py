"""legacy-api: the shop's oldest service, still on servers in the data centre (and EC2).

Deployed with CodeDeploy to EC2/on-premises instances, not to ECS: ``scripts/start.sh``
starts it as a long-running process on port 8080, ``scripts/validate.sh`` checks it over HTTP,
and the next revision's deployment stops it with ``scripts/stop.sh``. It answers like every
shop service (``shop_common``) and adds the revision it was built from, so a check can tell
two revisions apart.
"""

from __future__ import annotations

import os
from http.server import ThreadingHTTPServer

from shop_common import exit_if_broken_build, handler_for

PORT = int(os.environ.get("LEGACY_API_PORT", "8080"))

if __name__ == "__main__":
    exit_if_broken_build()
    revision = os.environ.get("SHOP_REVISION", "unknown")
    ThreadingHTTPServer(("0.0.0.0", PORT), handler_for(f"legacy-api@{revision}")).serve_forever()
