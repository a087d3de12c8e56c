"""Revision bundles: reproducible zips (same content, same bytes, same ETag) and ``deployfw bundle build``."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from servers_kit import write_bundle

from deployfw.errors import InputError
from deployfw.testing import calls, mutating, run_cli, terminal_env
from deployfw_aws.bundle import FIXED_TIME, pack


def _env(box: Any, **extra: str) -> dict[str, str]:
    return terminal_env(AWS_ENDPOINT_URL=box.endpoint_url, AWS_ACCESS_KEY_ID="sandbox",
                        AWS_SECRET_ACCESS_KEY="sandbox-secret", AWS_DEFAULT_REGION="us-east-1", **extra)  # fmt: skip


def test_same_content_gives_the_same_bytes_whatever_the_checkout(tmp_path: Path) -> None:
    hooks = {"ApplicationStart": "echo start"}
    first = write_bundle(tmp_path / "one", "repro", hooks, files={"b.txt": "b", "a.txt": "a"})
    second = write_bundle(tmp_path / "two", "repro", hooks, files={"a.txt": "a", "b.txt": "b"})
    os.utime(second / "app/a.txt", (1_000_000, 1_000_000))  # another checkout, another time
    (second / "app/b.txt").chmod(0o600)  # another umask: not executable either way
    one, two = pack(first), pack(second)
    assert one.data == two.data and one.md5 == two.md5 == hashlib.md5(one.data).hexdigest()
    with zipfile.ZipFile(io.BytesIO(one.data)) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        assert infos[0].filename == "app/a.txt" and "appspec.yml" in [i.filename for i in infos]
        assert {i.date_time for i in infos} == {FIXED_TIME}
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes["scripts/ApplicationStart.sh"] == 0o755 and modes["app/a.txt"] == modes["app/b.txt"] == 0o644
    (second / "app/b.txt").write_text("changed")
    assert pack(second).md5 != one.md5


def test_appspec_option_puts_another_file_at_the_root(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", "alt", {})
    other = tmp_path / "prod-appspec.yml"
    other.write_text((folder / "appspec.yml").read_text().replace("/opt/alt", "/srv/alt"))
    (folder / "appspec.yml").unlink()
    with pytest.raises(InputError, match=r"no appspec\.yml at the root of the bundle"):
        pack(folder)
    packed = pack(folder, other)
    assert packed.spec.files[0].destination == "/srv/alt"
    with zipfile.ZipFile(io.BytesIO(packed.data)) as archive:
        assert b"/srv/alt" in archive.read("appspec.yml")


def test_bundle_build_pushes_once_and_finds_the_same_etag_again(box: Any, tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", "push", {"ValidateService": "true"})
    box.client("s3").create_bucket(Bucket="push-bundles")
    env = _env(box, ARTIFACT_KIND="bundle", ARTIFACT_URI="s3://push-bundles/shop/push/content-1.zip")
    box.clear_requests()
    done = run_cli(env, tmp_path, "bundle", "build", str(folder), "--push")
    assert done.code == 0, done.output
    etag = pack(folder).md5
    assert done.stdout.splitlines()[-1] == f"s3://push-bundles/shop/push/content-1.zip@{etag}"
    head = box.client("s3").head_object(Bucket="push-bundles", Key="shop/push/content-1.zip")
    assert head["ETag"].strip('"') == etag
    assert len(calls(box.requests(), "PutObject")) == 1
    again = run_cli(env, tmp_path, "bundle", "build", str(folder), "--push")
    assert again.code == 0 and again.stdout.splitlines()[-1].endswith(f"@{etag}")
    assert len(calls(box.requests(), "PutObject")) == 1, "same content: nothing uploaded again"


def test_a_bad_appspec_stops_bundle_build_before_any_aws_call(box: Any, tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", "bad", {"ValidateService": "true"})
    (folder / "scripts/ValidateService.sh").chmod(0o644)
    box.clear_requests()
    done = run_cli(_env(box), tmp_path, "bundle", "build", str(folder), "--push", "s3://push-bundles/bad.zip")
    assert done.code == 2
    assert "b/appspec.yml:8: hooks.ValidateService[0].location: 'scripts/ValidateService.sh' is not executable" in (
        done.stderr)  # fmt: skip
    assert box.requests() == [] and mutating(box.requests()) == []


def test_push_needs_a_destination(box: Any, tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", "nowhere", {})
    done = run_cli(_env(box), tmp_path, "bundle", "build", str(folder), "--push")
    assert done.code == 2 and "--push needs s3://BUCKET/KEY" in done.stderr
