"""The IAM needs of notifications: Publish to the SNS topics, read the URLs kept in SSM or Secrets Manager.

Declared next to :mod:`deployfw_notify.delivery`'s calls and registered run-wide
(``registry.add_iam_needs``): ``deployfw iam policy`` grants exactly these topics, parameters and
secrets, and a refusal is explained with them. Targets whose events are silenced (``events: []``)
send nothing and need nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployfw_notify.settings import settings_of

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope


def needs(scope: IamScope) -> list[IamNeed]:
    from deployfw.iam.needs import IamNeed

    settings = settings_of(scope.config.sections.get("notify"))
    if settings is None:
        return []
    found: list[IamNeed] = []
    for target in settings.targets:
        if not target.events:
            continue
        if target.topic_arn:
            found.append(IamNeed("NotifyPublish", ("sns:Publish",), (target.topic_arn,),
                                 f"notify {target.label}"))  # fmt: skip
        kind, _, ref = str(target.url_from or "").partition(":")
        if kind == "ssm":
            name = ref.lstrip("/")
            found.append(IamNeed("NotifyReadParameter", ("ssm:GetParameter",),
                                 (scope.arn("ssm", f"parameter/{name}"),), f"read {target.label}'s URL"))  # fmt: skip
        elif kind == "secretsmanager":
            secret = ref.partition("#")[0]
            arn = secret if secret.startswith("arn:") else scope.arn("secretsmanager", f"secret:{secret}-??????")
            found.append(IamNeed("NotifyReadSecret", ("secretsmanager:GetSecretValue",), (arn,),
                                 f"read {target.label}'s URL"))  # fmt: skip
    return found
