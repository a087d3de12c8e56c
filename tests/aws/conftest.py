"""Fixtures for the ECS deployer tests: small repositories on disk, and one AWS sandbox.

The sandbox is module-scoped (start-up and seeding are paid once per file) and every test
deploys its own module/service, so tests never share a deployment group or a fault. Not
session-scoped: moto's state is process-wide and the most recently started in-process sandbox's
settings apply to all, so a sandbox outliving its file would be changed by the next file's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_helpers import CANARY, REGION, write_repo


@pytest.fixture
def repo(tmp_path: Path) -> Callable[..., Path]:
    def make(modules: dict[str, dict[str, Any]], files: dict[str, str] | None = None, **kwargs: Any) -> Path:
        return write_repo(tmp_path / "repo", modules, files, **kwargs)

    return make


# -- the sandbox ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from deployfw.sandbox.aws import AwsSandbox, Timings

    box = AwsSandbox(
        repo_root=tmp_path_factory.mktemp("sandbox-repo"),
        timings=Timings(deploy_step=0.1, rolling_step=0.1),
        seed=11,
        faults="",
    ).start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def aws(sandbox: Any) -> Callable[[str], Any]:
    """Plain boto3 clients on the sandbox, to look at the outcome the way a user would."""

    def make(service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=sandbox.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


@pytest.fixture(scope="module")
def infra(sandbox: Any) -> Any:
    """The services the tests deploy to, seeded once per file.

    Tests share them one after another: each deployment ends (succeeded, failed or
    stopped) before the test returns, and every test uses its own run id.
    """
    from deployfw.sandbox.aws import ServiceInfra, seed

    return seed(
        sandbox,
        [
            ServiceInfra("bg-api", "test-cluster", "bg-api"),
            ServiceInfra("canary-api", "test-cluster", "canary-api", deployment_config=CANARY),
            ServiceInfra("nlb-api", "test-cluster", "nlb-api", deploy_kind="nlb"),
            ServiceInfra("roll-api", "test-cluster", "roll-api", deploy_kind="rolling"),
            ServiceInfra("native-api", "test-cluster", "native-api", deploy_kind="native"),
            ServiceInfra("native-net", "test-cluster", "native-net", deploy_kind="native", load_balancer="network"),
        ],
    )


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials so boto3 never looks for real ones."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
