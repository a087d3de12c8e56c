"""Built-in plugin: the ``local`` build backend (runs a module's buildspec.yml on this machine)."""

from __future__ import annotations
