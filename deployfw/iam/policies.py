"""``deployfw iam policy`` as a library call: which configs, which account, which needs.

Without an environment the policy covers the config and every environment overlay of it (the
union, each ARN exact): one CI role that deploys to every environment. With one, only that
environment's resources. The account comes from the caller (``--account``) or STS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from deployfw.iam.collect import Declared, collect
from deployfw.iam.policy import PolicySet, build

if TYPE_CHECKING:
    from deployfw.config import Config
    from deployfw.session import Session


@dataclass(frozen=True)
class Declarations:
    """Everything the config's backends declare, for one account and region."""

    declared: tuple[Declared, ...]
    account: str
    region: str
    envs: tuple[str | None, ...]

    def policy(self, principal: str, *, setup: bool = False, optional: bool = False) -> PolicySet:
        return build(self.declared, principal, setup=setup, optional=optional)


def configs_for(session: Session, config: Config, *, every_env: bool) -> list[Config]:
    """``config`` and, when ``every_env``, each of its environment overlays."""
    from deployfw.config import load_config

    configs = [config]
    if every_env:
        catalog = session.plugins.backends.catalog()
        for env in config.environments:
            configs.append(load_config(config.file, env=env, catalog=catalog, root=config.root))
    return configs


def declarations(session: Session, *, account: str | None = None, every_env: bool | None = None) -> Declarations:
    """What every backend of the session's config declares; STS names the account unless given."""
    from deployfw.context import make_context

    config = session.load_config()
    every = session.env is None if every_env is None else every_env
    configs = configs_for(session, config, every_env=every)
    ctx = make_context(config, backends=session.plugins.backends)
    if account is None:
        from deployfw.state.open import aws_account

        session.connect(config)
        account = aws_account(ctx)
    found = collect(configs, session.plugins.backends, ctx, account=account, region=ctx.region)
    return Declarations(tuple(found), account, ctx.region, tuple(c.env for c in configs))
