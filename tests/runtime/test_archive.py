"""`docker save` archives and OCI-layout tarballs import with their tags."""
import gzip
import io
import json
import subprocess
import tarfile

import pytest
from conftest import run, sha

from skube.runtime.images import ImageService


def _tar(path, files: dict[str, bytes], compress=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue()) if compress else buf.getvalue())
    return path


def docker_archive(path, img, tags, compress=False):
    cfg_name = sha(img.config)[7:] + ".json"
    files = {cfg_name: img.config}
    layers = []
    for i, t in enumerate(img.diff_tars):
        files[f"layer{i}/layer.tar"] = t
        layers.append(f"layer{i}/layer.tar")
    files["manifest.json"] = json.dumps([{"Config": cfg_name, "RepoTags": tags, "Layers": layers}]).encode()
    return _tar(path, files, compress)


def oci_layout(path, img, index_annotations):
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    for blob in [img.config, img.manifest, *(b for b, _ in img.layers)]:
        files[f"blobs/sha256/{sha(blob)[7:]}"] = blob
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.digest, "size": len(img.manifest),
         "annotations": a} for a in index_annotations]}).encode()
    return _tar(path, files)


def _check_runs(svc, rec, cdir):
    async def go():
        root = await svc.prepare_rootfs(rec, cdir)
        out = subprocess.run(["chroot", str(root), "/bin/ls", "/etc"], capture_output=True, text=True, timeout=10)
        await svc.release_rootfs(cdir)
        return out.stdout.split()
    return go()


def test_import_docker_archive(images, tmp_path):
    path = docker_archive(tmp_path / "save.tar.gz", images.layered, ["myapp:v1", "reg.example:5000/team/app:2"],
                          compress=True)

    async def go():
        svc = ImageService(tmp_path / "data")
        try:
            recs = await svc.import_archive(path)
            assert [r.name for r in recs] == ["docker.io/library/myapp:v1", "reg.example:5000/team/app:2"]
            assert recs[0].config_digest == sha(images.layered.config) and recs[0].config["Cmd"] == ["ls", "/etc"]
            assert svc.get("myapp:v1").layers == recs[0].layers
            assert await _check_runs(svc, recs[0], tmp_path / "c") == ["b-link", "b.txt", "c.txt", "group", "passwd"]
        finally:
            await svc.close()
    run(go())


def test_import_oci_layout_then_pull_reuses_layers(images, registries, tmp_path):
    path = oci_layout(tmp_path / "busybox-oci.tar", images.busybox, [
        {"org.opencontainers.image.ref.name": "1.35"},
        {"io.containerd.image.name": "docker.io/library/busybox:stable",
         "org.opencontainers.image.ref.name": "stable"}])

    async def go():
        svc = ImageService(tmp_path / "data")
        try:
            recs = await svc.import_archive(path)
            assert [r.name for r in recs] == ["localhost/busybox-oci:1.35", "docker.io/library/busybox:stable"]
            assert recs[0].digest == images.busybox.digest
            assert "passwd" in await _check_runs(svc, recs[1], tmp_path / "c")
            # the same layers from a registry are not downloaded again
            await svc.pull(f"{registries.anon.host}/library/busybox")
            assert svc.client.blob_fetches == 0
        finally:
            await svc.close()
    run(go())


def test_import_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    empty = _tar(tmp_path / "empty.tar", {"x": b"y"})

    async def go():
        svc = ImageService(tmp_path / "data")
        try:
            for p in (bad, empty):
                with pytest.raises(ValueError):
                    await svc.import_archive(p)
            assert svc.list() == []
        finally:
            await svc.close()
    run(go())
