"""deployfw's built-in notifications: Slack, Microsoft Teams, Amazon Chime, SNS and plain JSON webhooks.

A plugin like any third party's: it owns the ``notify:`` section of modules.yaml
(registered through ``deployfw_register_backends``) and listens to the run's
lifecycle hooks. Importing it is free: messages are built and sent only in a run
whose config has the section, and AWS is reached (through :mod:`deployfw.aws`)
only for SSM, Secrets Manager and SNS.
"""

from __future__ import annotations
