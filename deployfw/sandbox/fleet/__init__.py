"""The sandbox's server instances and the CodeDeploy agent that deploys to them.

:class:`Fleet` keeps the instances (hosts with an address and a root folder of their own, see
``fleet.py`` and ``hosts.py``); :class:`Agent` does on one instance what the CodeDeploy agent
does for one deployment (``agent.py``). The CodeDeploy backend decides which instances a
deployment reaches and when (``deployfw/sandbox/aws/codedeploy_server.py``).
"""

from __future__ import annotations

from deployfw.sandbox.fleet.agent import Agent, AgentJob
from deployfw.sandbox.fleet.fleet import Fleet, Instance

__all__ = ["Agent", "AgentJob", "Fleet", "Instance"]
