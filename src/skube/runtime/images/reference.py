"""Docker image references: parse, validate and normalise (`busybox` -> `docker.io/library/busybox:latest`)."""
from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                   r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")


class InvalidReference(ValueError):
    """The string is not a valid image reference."""


@dataclass(frozen=True)
class Reference:
    """A normalised reference: registry host, repository path, and a tag and/or digest."""
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, the part without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """Host (and port) to talk the distribution API to."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes after /manifests/ : the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar(self) -> str:
        """Short form as `docker images` shows it (`busybox:latest`)."""
        s = str(self)
        if self.registry == DOCKER_HUB:
            s = s[len(DOCKER_HUB) + 1:]
            if s.startswith("library/") and "/" not in s[8:].split(":")[0].split("@")[0]:
                s = s[8:]
        return s


def normalise_registry(host: str) -> str:
    """Registry host as stored: docker hub aliases collapse to `docker.io`."""
    host = host.strip().lower()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix):]
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def parse(text: str) -> Reference:
    """Parse `[host[:port]/]path[:tag][@digest]`; short names mean docker.io/library, no tag means latest."""
    if not text or text != text.strip() or len(text) > 4096:
        raise InvalidReference(f"invalid reference format: {text!r}")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest in reference {text!r}")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag in reference {text!r}")
    parts = rest.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST.match(first):
            raise InvalidReference(f"invalid registry host in reference {text!r}")
        registry, path = normalise_registry(first), parts[1:]
    else:
        registry, path = DOCKER_HUB, parts
    if not path or not all(_COMPONENT.match(c) for c in path):
        raise InvalidReference(f"invalid reference format: repository name must be lowercase: {text!r}")
    if registry == DOCKER_HUB and len(path) == 1:
        path = ["library", *path]
    repository = "/".join(path)
    if len(registry) + 1 + len(repository) > 255:
        raise InvalidReference(f"repository name too long: {text!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, repository, tag, digest)


def normalise(text: str) -> str:
    """The canonical string of a reference (`busybox` -> `docker.io/library/busybox:latest`)."""
    return str(parse(text))
