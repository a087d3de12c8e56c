#!/bin/sh
# BeforeInstall - make the folders the service uses; the files themselves are installed by CodeDeploy.
set -eu
ROOT="${DEPLOYFW_INSTANCE_ROOT:-}"
mkdir -p "$ROOT/var/run" "$ROOT/var/log/legacy-api"
echo "installing $APPLICATION_NAME revision for $DEPLOYMENT_GROUP_NAME (deployment $DEPLOYMENT_ID)"
