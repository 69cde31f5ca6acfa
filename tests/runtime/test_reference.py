import pytest

from skube.runtime.images.reference import InvalidReference, normalise, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text,expected", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/a/b/c:v1", "localhost:5000/a/b/c:v1"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}"),
    (f"reg.io/app:v1@{D}", f"reg.io/app:v1@{D}"),
])
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_parts():
    r = parse("127.0.0.1:5000/ns/app:v1")
    assert (r.registry, r.repository, r.tag, r.digest, r.reference) == ("127.0.0.1:5000", "ns/app", "v1", None, "v1")
    assert parse("busybox").api_host == "registry-1.docker.io"
    assert parse(f"busybox:1@{D}").reference == D
    assert parse("busybox").familiar() == "busybox:latest"


@pytest.mark.parametrize("bad", ["", "Busybox", "a b", "busybox:", "busybox@sha256:xyz", ":tag", "a//b",
                                 "busybox:-x", "reg.io/UPPER:1", " busybox"])
def test_invalid(bad):
    with pytest.raises(InvalidReference):
        parse(bad)
