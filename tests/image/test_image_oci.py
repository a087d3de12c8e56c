"""Images built from a directory: reproducible digests, config fields, base-image layering."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from deployfw.errors import InputError
from deployfw.image import Image, ImageSpec, build_image, write_oci_layout
from deployfw.image.blobs import (
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    OCI_MANIFEST,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BASE_CONFIG: dict[str, Any] = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Env": ["PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8"],
        "Cmd": ["sh"],
        "Labels": {"base": "yes", "shared": "base"},
        "ExposedPorts": {"22/tcp": {}},
        "StopSignal": "SIGTERM",
    },
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "base"}],
}


def make_layout(root: Path, *, arm_too: bool = False) -> tuple[Path, list[str]]:
    """An OCI layout with one uncompressed and one gzip layer; returns it and the diff_ids."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, Any]:
        (blobs / sha(data)[7:]).write_bytes(data)
        return {"digest": sha(data), "size": len(data)}

    raw1 = tar_bytes({"etc/os-release": b"ID=test\n"})
    raw2 = tar_bytes({"opt/bin/tool": b"tool"})
    gz2 = gzip.compress(raw2, mtime=0)
    config = {**BASE_CONFIG, "rootfs": {"type": "layers", "diff_ids": [sha(raw1), sha(raw2)]}}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **put(json.dumps(config).encode())},
        "layers": [
            {"mediaType": OCI_LAYER_TAR, **put(raw1)},
            {"mediaType": OCI_LAYER_GZIP, **put(gz2)},
        ],
    }
    entry = {
        "mediaType": OCI_MANIFEST,
        **put(json.dumps(manifest).encode()),
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    manifests = [entry]
    if arm_too:
        manifests.append({**entry, "platform": {"os": "linux", "architecture": "arm64"}})
        nested = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        manifests = [{"mediaType": OCI_INDEX, **put(json.dumps(nested).encode())}]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return root, [sha(raw1), sha(raw2)]


def referenced(image: Image) -> dict[str, Any]:
    return json.loads(image.manifest)


def test_same_content_same_digests_even_with_other_mtimes(app_dir: Path, tree: Any) -> None:
    spec = ImageSpec(cmd=("python", "main.py"))
    first = build_image(app_dir, spec)
    copy = tree(
        app_dir.parent / "copy",
        {p.relative_to(app_dir).as_posix(): p.read_bytes() for p in app_dir.rglob("*") if p.is_file()},
    )
    (copy / "run.sh").chmod(0o755)
    for path in copy.rglob("*"):
        os.utime(path, (1, 1))
    second = build_image(copy, spec)
    assert first.manifest == second.manifest
    assert first.digest == second.digest
    assert first.config.digest == second.config.digest
    assert [b.digest for b in first.layers] == [b.digest for b in second.layers]


def test_changed_content_or_config_changes_the_digest(app_dir: Path) -> None:
    before = build_image(app_dir, ImageSpec())
    assert build_image(app_dir, ImageSpec(env={"A": "1"})).digest != before.digest
    (app_dir / "main.py").write_text("print('bye')\n")
    after = build_image(app_dir, ImageSpec())
    assert after.digest != before.digest
    assert after.layers[0].digest != before.layers[0].digest


def test_digests_are_sha256_of_the_bytes(app_dir: Path) -> None:
    image = build_image(app_dir, ImageSpec())
    assert image.digest == sha(image.manifest)
    manifest = referenced(image)
    assert manifest["mediaType"] == image.media_type == OCI_MANIFEST
    assert manifest["schemaVersion"] == 2
    assert manifest["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": sha(image.config.read()),
        "size": len(image.config.read()),
    }
    layer = image.layers[0]
    assert manifest["layers"] == [{"mediaType": OCI_LAYER_GZIP, "digest": sha(layer.read()), "size": len(layer.read())}]
    assert image.config_json["rootfs"] == {
        "type": "layers",
        "diff_ids": [sha(gzip.decompress(layer.read()))],
    }


def test_config_fields(app_dir: Path) -> None:
    spec = ImageSpec(
        entrypoint=("python",),
        cmd=("main.py",),
        env={"APP_ENV": "prod", "EMPTY": ""},
        ports=("8080", "53/udp"),
        labels={"team": "shop"},
        workdir="/app",
        user="1000:1000",
        destination="/app",
    )
    config = build_image(app_dir, spec).config_json
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"] == {
        "Entrypoint": ["python"],
        "Cmd": ["main.py"],
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP_ENV=prod",
            "EMPTY=",
        ],
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "Labels": {"team": "shop"},
        "WorkingDir": "/app",
        "User": "1000:1000",
    }
    assert all("created" not in h for h in config["history"])
    assert "created" not in config


def test_source_date_epoch_sets_created_and_mtimes(app_dir: Path) -> None:
    image = build_image(app_dir, ImageSpec(epoch=1700000000))
    assert image.config_json["created"] == "2023-11-14T22:13:20Z"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(image.layers[0].read()))) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}


def test_base_layout_layers_come_first_and_config_is_merged(app_dir: Path, tmp_path: Path) -> None:
    layout, base_diff_ids = make_layout(tmp_path / "base")
    spec = ImageSpec(
        base=layout,
        entrypoint=("python",),
        env={"LANG": "en_US.UTF-8", "APP": "1"},
        ports=("8080",),
        labels={"shared": "app"},
    )
    image = build_image(app_dir, spec)
    config = image.config_json
    assert config["rootfs"]["diff_ids"][:2] == base_diff_ids
    assert len(config["rootfs"]["diff_ids"]) == len(image.layers) == 3
    # the uncompressed base layer was gzipped; the gzip one is referenced as it is
    assert [b.media_type for b in image.layers] == [OCI_LAYER_GZIP] * 3
    assert sha(gzip.decompress(image.layers[0].read())) == base_diff_ids[0]
    gz_name = (layout / "blobs" / "sha256").glob("*")
    assert image.layers[1].digest[7:] in {p.name for p in gz_name}
    container = config["config"]
    assert container["Env"] == ["PATH=/opt/bin:/usr/bin", "LANG=en_US.UTF-8", "APP=1"]
    assert container["Entrypoint"] == ["python"]
    assert "Cmd" not in container  # a new entrypoint drops the inherited cmd, as in a Dockerfile
    assert container["ExposedPorts"] == {"22/tcp": {}, "8080/tcp": {}}
    assert container["Labels"] == {"base": "yes", "shared": "app"}
    assert container["StopSignal"] == "SIGTERM"
    assert config["history"][0] == BASE_CONFIG["history"][0]
    assert config["history"][-1]["created_by"] == "deployfw image build"
    # reproducible with a base too
    assert build_image(app_dir, spec).digest == image.digest


def test_base_index_picks_linux_amd64(app_dir: Path, tmp_path: Path) -> None:
    layout, base_diff_ids = make_layout(tmp_path / "multi", arm_too=True)
    image = build_image(app_dir, ImageSpec(base=layout))
    assert image.config_json["rootfs"]["diff_ids"][:2] == base_diff_ids


def test_base_as_oci_archive_and_docker_save_tarballs(app_dir: Path, tmp_path: Path) -> None:
    layout, base_diff_ids = make_layout(tmp_path / "base")
    from_dir = build_image(app_dir, ImageSpec(base=layout))

    archive = tmp_path / "base.oci.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=path.relative_to(layout).as_posix(), recursive=False)
    assert build_image(app_dir, ImageSpec(base=archive)).digest == from_dir.digest

    # docker save: uncompressed layer tars and a manifest.json
    config = {**BASE_CONFIG, "rootfs": {"type": "layers", "diff_ids": base_diff_ids}}
    layers = {
        "l1/layer.tar": tar_bytes({"etc/os-release": b"ID=test\n"}),
        "l2/layer.tar": tar_bytes({"opt/bin/tool": b"tool"}),
    }
    assert [sha(v) for v in layers.values()] == base_diff_ids
    saved = tmp_path / "base.docker.tar"
    files = {
        "cfg.json": json.dumps(config).encode(),
        "manifest.json": json.dumps([{"Config": "cfg.json", "RepoTags": ["base:1"], "Layers": list(layers)}]).encode(),
        **layers,
    }
    saved.write_bytes(tar_bytes(files))
    image = build_image(app_dir, ImageSpec(base=saved))
    assert image.config_json["rootfs"]["diff_ids"][:2] == base_diff_ids
    assert [sha(gzip.decompress(b.read())) for b in image.layers[:2]] == base_diff_ids


def test_docker_manifest_format(app_dir: Path, tmp_path: Path) -> None:
    layout, _ = make_layout(tmp_path / "base")
    image = build_image(app_dir, ImageSpec(base=layout, manifest_format="docker"))
    manifest = referenced(image)
    assert manifest["mediaType"] == image.media_type == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER_GZIP}
    oci = build_image(app_dir, ImageSpec(base=layout))
    assert [b.digest for b in image.layers] == [b.digest for b in oci.layers]


def test_output_layout_round_trips_as_a_base(app_dir: Path, tmp_path: Path, tree: Any) -> None:
    image = build_image(app_dir, ImageSpec(cmd=("python", "main.py"), destination="/app"))
    out = write_oci_layout(image, tmp_path / "out", ref_name="v1")
    index = json.loads((out / "index.json").read_bytes())
    (entry,) = index["manifests"]
    assert entry["digest"] == image.digest
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    assert (out / "blobs" / "sha256" / image.digest[7:]).read_bytes() == image.manifest
    for blob in image.blobs:
        assert sha((out / "blobs" / "sha256" / blob.hex).read_bytes()) == blob.digest
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}

    extra = tree(tmp_path / "extra", {"more.txt": "more"})
    child = build_image(extra, ImageSpec(base=out))
    assert child.layers[0].digest == image.layers[0].digest
    assert child.config_json["config"]["Cmd"] == ["python", "main.py"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "not found"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "neither an OCI image layout"),
        (lambda p: (p / "junk.tar").write_bytes(b"junk" * 200) and p / "junk.tar", "not a readable"),
    ],
)
def test_unreadable_base_is_input_error(app_dir: Path, tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_image(app_dir, ImageSpec(base=make(tmp_path)))


def test_bad_spec_and_context_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="context directory not found"):
        build_image(tmp_path / "nope", ImageSpec())
    with pytest.raises(InputError, match="port"):
        ImageSpec(ports=("http",))
    with pytest.raises(InputError, match="absolute"):
        ImageSpec(workdir="app")
