"""Embedded stand-ins for AWS and Jenkins."""

from __future__ import annotations
