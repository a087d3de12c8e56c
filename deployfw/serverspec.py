"""What CodeDeploy's EC2/on-premises platform calls things: lifecycle events, limits, choices.

One vocabulary for the two sides that read server AppSpecs - deployfw's preflight (the AWS
plugin, strict: it refuses what would fail or silently do nothing) and the sandbox's stand-in
for the CodeDeploy agent (lenient where the real agent is) - so they never disagree about a
name or a limit. Facts as the CodeDeploy user guide and the agent state them.
"""

from __future__ import annotations

LIFECYCLE_ORDER: tuple[str, ...] = (
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
)
"""Every lifecycle event of an in-place deployment, in the order they run."""

RESERVED: frozenset[str] = frozenset({"DownloadBundle", "Install", "BlockTraffic", "AllowTraffic"})
"""Events the agent performs itself; an AppSpec cannot attach scripts to them."""

TRAFFIC_EVENTS: frozenset[str] = frozenset(
    e for e in LIFECYCLE_ORDER if e.endswith(("BlockTraffic", "AllowTraffic"))
)
"""Events that happen only when the deployment group has a load balancer."""

IN_PLACE_EVENTS: tuple[str, ...] = tuple(e for e in LIFECYCLE_ORDER if e not in TRAFFIC_EVENTS)
"""What an in-place deployment without a load balancer goes through on each instance."""

SCRIPTABLE: tuple[str, ...] = tuple(e for e in LIFECYCLE_ORDER if e not in RESERVED)

PREVIOUS_REVISION_EVENTS: frozenset[str] = frozenset({"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"})
"""Events whose scripts come from the last revision installed on the instance, not the new one."""

MAX_EVENT_SECONDS = 3600
"""The longest the scripts of one lifecycle event may run together (and one script's default timeout)."""

FILE_EXISTS_BEHAVIORS: tuple[str, ...] = ("DISALLOW", "OVERWRITE", "RETAIN")
DEFAULT_FILE_EXISTS = "DISALLOW"

APPSPEC_NAME = "appspec.yml"
INSTANCE_ROOT_ENV = "DEPLOYFW_INSTANCE_ROOT"
"""Where a sandbox instance's own filesystem root is; empty (unset) on a real server. Hook scripts
write ``${DEPLOYFW_INSTANCE_ROOT}/opt/app`` and run unchanged in both places."""

SCRIPT_ENV: tuple[str, ...] = (
    "LIFECYCLE_EVENT",
    "DEPLOYMENT_ID",
    "APPLICATION_NAME",
    "DEPLOYMENT_GROUP_NAME",
    "DEPLOYMENT_GROUP_ID",
)
"""The variables CodeDeploy sets for every hook script (with BUNDLE_* for an S3 revision)."""

PREDEFINED_CONFIGS: dict[str, tuple[str, int]] = {
    "CodeDeployDefault.OneAtATime": ("MOST_CONCURRENCY", 1),
    "CodeDeployDefault.HalfAtATime": ("FLEET_PERCENT", 50),
    "CodeDeployDefault.AllAtOnce": ("FLEET_PERCENT", 0),
}
"""The predefined Server configs' minimum healthy hosts as GetDeploymentConfig reports them:
OneAtATime keeps every instance but one healthy (``MOST_CONCURRENCY`` 1), HalfAtATime half of the
fleet rounded up, AllAtOnce none."""
