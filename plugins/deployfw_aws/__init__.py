"""Built-in plugin: AWS backends (CodeBuild, ECR, ECS blue/green, rolling and NLB deploys)."""

from __future__ import annotations
