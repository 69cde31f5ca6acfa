"""Pulls from a real registry (docker-registry on loopback): auth flows, policies, errors, sharing."""
import asyncio
import gzip
import hashlib
import json
from pathlib import Path

import pytest
from conftest import PASSWORD, USER, build_image, docker_config, make_tar, pull_secret, push_image, run, _add

from skube.runtime.images import ImagePullError, ImageService, RegistryClient
from skube.runtime.images.registry import InsecureRegistries, parse_docker_configs


async def _with_service(data_dir: Path, fn, **kw):
    svc = ImageService(data_dir, **kw)
    try:
        return await fn(svc)
    finally:
        await svc.close()


def test_pull_index_picks_host_platform_and_verifies(registries, tmp_path):
    host, imgs = registries.anon.host, registries.images
    seen = []

    async def go(svc):
        rec = await svc.pull(f"{host}/library/busybox", progress=lambda d, done, total: seen.append((d, done, total)))
        assert rec.name == f"{host}/library/busybox:latest"
        assert rec.digest == imgs.index_digest
        assert rec.manifest_digest == imgs.busybox.digest  # amd64 entry, not the arm64 one listed first
        assert rec.config["Cmd"] == ["sh"]
        assert len(rec.layers) == 1 and rec.size == len(imgs.busybox.config) + imgs.busybox.size
        layer = imgs.busybox.layers[0][0]
        assert ("sha256:" + hashlib.sha256(layer).hexdigest(), len(layer), len(layer)) in seen
        assert svc.get(f"{host}/library/busybox:latest") is rec
        assert [r.name for r in svc.list()] == [rec.name]
        # cached: IfNotPresent is a lookup, no request at all
        before = svc.client.requests
        assert await svc.pull(f"{host}/library/busybox:latest") is rec
        assert svc.client.requests == before
        # Always re-resolves the manifest but downloads nothing when the digest is unchanged
        fetches = svc.client.blob_fetches
        again = await svc.pull(f"{host}/library/busybox", policy="Always")
        assert again.digest == rec.digest and svc.client.requests > before
        assert svc.client.blob_fetches == fetches
        # pinned by digest
        pinned = await svc.pull(f"{host}/library/busybox@{imgs.busybox.digest}")
        assert pinned.manifest_digest == imgs.busybox.digest and pinned.layers == rec.layers
    run(_with_service(tmp_path, go))


def test_policy_never(registries, tmp_path):
    host = registries.anon.host

    async def go(svc):
        with pytest.raises(ImagePullError) as e:
            await svc.pull(f"{host}/library/busybox", policy="Never")
        assert e.value.reason == "ErrImageNeverPull"
        await svc.pull(f"{host}/library/busybox")
        assert (await svc.pull(f"{host}/library/busybox", policy="Never")).config["Cmd"] == ["sh"]
    run(_with_service(tmp_path, go))


def test_missing_tag_and_repo_and_bad_name(registries, tmp_path):
    host = registries.anon.host

    async def go(svc):
        for ref in (f"{host}/library/busybox:nope", f"{host}/no/such/repo:v1"):
            with pytest.raises(ImagePullError) as e:
                await svc.pull(ref)
            assert e.value.reason == "ErrImagePull" and e.value.cause == "not found", e.value
            assert "not found" in str(e.value)
        with pytest.raises(ImagePullError) as e:
            await svc.pull("Not A Valid Name")
        assert e.value.reason == "InvalidImageName"
        assert svc.list() == []
    run(_with_service(tmp_path, go))


def test_basic_auth(registries, tmp_path):
    host = registries.basic.host
    ref = f"{host}/test/layered:v1"

    async def go(svc):
        for creds in (None, [docker_config(host, USER, "wrong")]):
            with pytest.raises(ImagePullError) as e:
                await svc.pull(ref, credentials=creds)
            assert e.value.reason == "ErrImagePull" and e.value.cause == "unauthorized", e.value
        rec = await svc.pull(ref, credentials=[pull_secret("http://" + host + "/v1/")])
        assert rec.config["Cmd"] == ["ls", "/etc"] and len(rec.layers) == 3
    run(_with_service(tmp_path, go))


def test_token_auth(registries, tmp_path):
    host = registries.token.host
    ref = f"{host}/library/busybox:latest"

    async def go(svc):
        with pytest.raises(ImagePullError) as e:  # anonymous token has no pull access
            await svc.pull(ref)
        assert e.value.cause == "unauthorized"
        with pytest.raises(ImagePullError) as e:  # token server refuses the password
            await svc.pull(ref, credentials=[docker_config(host, USER, "wrong")])
        assert e.value.cause == "unauthorized"
        tokens_before = registries.token_server.requests
        rec = await svc.pull(ref, credentials=[docker_config("other.example:5000", "x", "y"), docker_config(host)])
        assert rec.digest == registries.images.index_digest
        # one token serves every request of the pull (manifests, config, layers)
        assert registries.token_server.requests - tokens_before == 1
    run(_with_service(tmp_path, go))


def test_concurrent_pulls_download_once(registries, tmp_path):
    host, imgs = registries.anon.host, registries.images

    async def go(svc):
        a, b, c = await asyncio.gather(svc.pull(f"{host}/library/busybox"), svc.pull(f"{host}/library/busybox"),
                                       svc.pull(f"{host}/test/layered:v1"))
        assert a is b
        # busybox: config + base layer; layered: config + 2 own layers; the shared base layer once
        assert svc.client.blob_fetches == 5
        assert c.layers[0] == a.layers[0]
    run(_with_service(tmp_path, go))


def test_two_services_share_one_store(registries, tmp_path):
    """Two processes' view (separate stores on one data dir): the second sees the first's pull."""
    host = registries.anon.host

    async def go():
        one, two = ImageService(tmp_path), ImageService(tmp_path)
        try:
            assert two.get(f"{host}/library/busybox") is None
            rec = await one.pull(f"{host}/library/busybox")
            seen = two.get(f"{host}/library/busybox")
            assert seen is not None and seen.digest == rec.digest
            await two.pull(f"{host}/library/busybox")
            assert two.client.requests == 0
            await two.remove(f"{host}/library/busybox")
            assert one.get(f"{host}/library/busybox") is None
        finally:
            await one.close()
            await two.close()
    run(go())


def test_plain_http_needs_insecure(registries, tmp_path):
    async def go(svc):
        with pytest.raises(ImagePullError) as e:
            await svc.pull(f"{registries.anon.host}/library/busybox")
        assert e.value.reason == "ErrImagePull" and e.value.cause == "network"
    run(_with_service(tmp_path, go, insecure_registries=[]))


def test_tampered_blob_is_rejected(registries, tmp_path):
    host = registries.anon.host
    layer = make_tar(lambda tf: _add(tf, "hello.txt", data=b"x" * 5000))
    img = build_image([layer], ["gzip"])

    async def go(svc):
        client = RegistryClient()
        try:
            await push_image(client, f"{host}/test/tampered:v1", img)
        finally:
            await client.close()
        blob, _ = img.layers[0]
        hexd = hashlib.sha256(blob).hexdigest()
        stored = registries.anon.root / "data/docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
        stored.write_bytes(gzip.compress(make_tar(lambda tf: _add(tf, "hello.txt", data=b"y" * 5000)))[:len(blob)]
                           .ljust(len(blob), b"\0"))
        with pytest.raises(ImagePullError) as e:
            await svc.pull(f"{host}/test/tampered:v1")
        assert e.value.cause == "digest mismatch", e.value
        assert svc.list() == [] and not svc.store.has_blob("sha256:" + hexd)
        assert list((svc.store.root / "ingest").iterdir()) == []
    run(_with_service(tmp_path, go))


def test_docker_config_parsing():
    creds = parse_docker_configs([
        pull_secret("https://index.docker.io/v1/", "hub", "pw"),
        {"auths": {"reg.io": {"username": "u", "password": "p"}}},
        {"legacy.io": {"auth": "bDpw"}},  # .dockercfg: l:p
        {"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
         "stringData": {".dockerconfigjson": json.dumps({"auths": {"reg.io": {"auth": "eDp5"}}})}},
    ])
    assert creds == {"docker.io": ("hub", "pw"), "reg.io": ("u", "p"), "legacy.io": ("l", "p")}


def test_insecure_matching():
    ins = InsecureRegistries(["127.0.0.1", "localhost", "10.0.0.0/8", "reg.local:5000"])
    assert "127.0.0.1:5000" in ins and "localhost:1" in ins and "10.2.3.4:443" in ins
    assert "reg.local:5000" in ins and "reg.local:6000" not in ins and "example.com" not in ins
    assert "127.0.0.2:5000" in ins  # all of loopback when localhost is allowed
