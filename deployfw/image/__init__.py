"""Daemon-less container images: build an OCI image from a directory and push it to ECR.

CodeBuild and Jenkins agents often have no Docker engine, and Docker-in-Docker
needs privileged mode. An image is only a few JSON documents and tarballs, so
deployfw writes them itself (:mod:`deployfw.image.oci`) and uploads them through
ECR's layer-upload API (:mod:`deployfw.image.push`), which needs nothing but
AWS credentials. Identical inputs give an identical manifest digest, so the
registry backend can deploy by digest and skip pushes that change nothing.

Importing this package imports neither boto3 nor click.
"""

from __future__ import annotations

from deployfw.image.blobs import Blob
from deployfw.image.oci import Image, build_image, write_oci_layout
from deployfw.image.push import PushResult, push_image
from deployfw.image.spec import ImageSpec

__all__ = [
    "Blob",
    "Image",
    "ImageSpec",
    "PushResult",
    "build_image",
    "push_image",
    "write_oci_layout",
]
