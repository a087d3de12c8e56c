"""Embedded stand-ins for AWS and Jenkins."""

from __future__ import annotations

CLIENT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "JENKINS_URL",
    "JENKINS_USER",
    "JENKINS_API_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "DEPLOYFW_SANDBOX_TIME_SCALE",
)
"""What ``deployfw sandbox`` prints, in order: the first four are DESIGN.md's contract, then the
credentials and region, then its clock's scale (deployfw paces its polls by it). Here (imports
nothing) so the CLI and the test kit's process wrapper share it."""
