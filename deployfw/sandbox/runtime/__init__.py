"""The sandbox's container runtime: tasks started from pushed images as real processes.

:class:`TaskRuntime` is the reusable piece: ECS services, task sets and ECS-native
deployments run their tasks through it, and so can server instances. See
``runtime.py`` for the life cycle, ``image.py`` for how an image becomes a command line
on this machine and ``network.py`` for how each task gets an address of its own.
"""

from __future__ import annotations

from deployfw.sandbox.runtime.blobs import BlobStore, blob_store
from deployfw.sandbox.runtime.runtime import ContainerSpec, ContainerState, TaskRuntime, TaskSpec, TaskState

__all__ = ["BlobStore", "ContainerSpec", "ContainerState", "TaskRuntime", "TaskSpec", "TaskState", "blob_store"]
