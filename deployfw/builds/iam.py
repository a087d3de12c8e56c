"""What a module's buildspec needs from IAM: the SSM parameters and Secrets Manager secrets its
``env`` section names (``parameter-store``, ``secrets-manager``), read by whoever runs the build.

Every build backend runs the same buildspec (the build contract), so each declares these for its
builder with :func:`buildspec_needs`. The action depends on who resolves: deployfw's own resolver
(a local or Jenkins build) calls ``ssm:GetParameter``; CodeBuild resolves ``parameter-store`` with
``ssm:GetParameters``. Both read secrets with ``secretsmanager:GetSecretValue``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployfw.builds.contract import load_module_buildspec
from deployfw.buildspec.secrets import parse_secret_reference

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope


def buildspec_needs(scope: IamScope, principal: str, ssm_action: str = "ssm:GetParameter") -> list[IamNeed]:
    """The needs of ``scope.module``'s buildspec environment for ``principal`` (its builder)."""
    from deployfw.iam.needs import IamNeed

    assert scope.module is not None
    spec, _ = load_module_buildspec(scope.config, scope.module)
    env = spec.env
    needs: list[IamNeed] = []
    parameters = sorted({scope.arn("ssm", f"parameter/{name.lstrip('/')}") for name in env.parameter_store.values()})
    if parameters:
        needs.append(IamNeed("BuildParameters", (ssm_action,), tuple(parameters),
                             f"{scope.module.name}'s buildspec reads parameter-store variables",
                             principal=principal))  # fmt: skip
    secrets: set[str] = set()
    for reference in env.secrets_manager.values():
        secret_id = parse_secret_reference(reference).secret_id
        # An ARN may omit the random suffix; a name never has it: match any suffix AWS added.
        if not secret_id.startswith("arn:"):
            secret_id = scope.arn("secretsmanager", f"secret:{secret_id}-??????")
        secrets.add(secret_id)
    if secrets:
        needs.append(IamNeed("BuildSecrets", ("secretsmanager:GetSecretValue",), tuple(sorted(secrets)),
                             f"{scope.module.name}'s buildspec reads secrets-manager variables",
                             principal=principal))  # fmt: skip
    return needs
