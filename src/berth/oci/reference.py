"""Image references: `[registry/]name[:tag][@digest]`, normalised as the Docker CLI does.

`busybox` -> `docker.io/library/busybox:latest`; `localhost:5000/x` keeps its registry; the familiar
(short) form drops `docker.io/` and `library/` again for display. Pure data, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

# Grammar from the distribution reference spec.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
TAG_RE = re.compile(rf"^{_TAG}$")
DIGEST_RE = re.compile(rf"^{_DIGEST}$")
HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
SHA256_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A normalised reference. `domain` and `path` are always set; tag and digest may be None."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository, fully qualified: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as users write it: `busybox`, `user/app`, `localhost:5000/x`."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_REPO_PREFIX) and path.count("/") == 1:
                path = path[len(OFFICIAL_REPO_PREFIX):]
            return path
        return self.name

    def __str__(self) -> str:
        return self._render(self.name)

    def familiar(self) -> str:
        """Short form for display: `busybox:latest`, `localhost:5000/x:t`, `x@sha256:...`."""
        return self._render(self.familiar_name)

    def _render(self, name: str) -> str:
        out = name
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def with_tag(self, tag: str) -> Reference:
        _check_tag(tag, tag)
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        _check_digest(digest, digest)
        return Reference(self.domain, self.path, None, digest)

    @property
    def is_tagged(self) -> bool:
        return self.tag is not None

    @property
    def is_canonical(self) -> bool:
        return self.digest is not None


def _check_tag(tag: str, ref: str) -> None:
    if not TAG_RE.match(tag):
        raise InvalidArgument(
            f"invalid reference format: tag {tag!r} in {ref!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
        )


def _check_digest(digest: str, ref: str) -> None:
    if not DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid reference format: digest {digest!r} in {ref!r} is malformed")
    algo, _, hexpart = digest.partition(":")
    if algo == "sha256" and not HEX64_RE.match(hexpart):
        raise InvalidArgument(
            f"invalid reference format: digest {digest!r} in {ref!r}: sha256 needs 64 lowercase hex digits"
        )


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's rule: the first component is a registry if it has a '.' or ':', is 'localhost',
    or holds uppercase letters (which a path component never may)."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def parse(ref: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise `ref`. With `default_tag`, a reference with neither tag nor digest gets
    `:latest` (as `docker pull busybox` does). Raises InvalidArgument naming the bad part."""
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument("invalid reference format: reference is empty")
    if ref != ref.strip() or any(c.isspace() for c in ref):
        raise InvalidArgument(f"invalid reference format: {ref!r} contains whitespace")
    if HEX64_RE.match(ref):
        raise InvalidArgument(
            f"invalid repository name ({ref}), cannot specify 64-byte hexadecimal strings"
        )
    rest, digest = ref, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        _check_digest(digest, ref)
    tag = None
    # A ':' after the last '/' starts the tag; one before it is a registry port.
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        _check_tag(tag, ref)
    if not rest:
        raise InvalidArgument(f"invalid reference format: {ref!r} has no repository name")
    domain, path = _split_domain(rest)
    if not DOMAIN_RE.match(domain):
        raise InvalidArgument(f"invalid reference format: registry {domain!r} in {ref!r} is malformed")
    if not PATH_RE.match(path):
        if path.lower() != path and PATH_RE.match(path.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name {path!r} in {ref!r} must be lowercase"
            )
        raise InvalidArgument(
            f"invalid reference format: repository name {path!r} in {ref!r} may hold only lowercase "
            "letters, digits and separators (., _, __, -) between path components"
        )
    if len(domain) + 1 + len(path) > NAME_TOTAL_MAX:
        raise InvalidArgument(
            f"invalid reference format: repository name in {ref!r} is longer than {NAME_TOTAL_MAX} characters"
        )
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize(ref: str) -> str:
    """`busybox` -> `docker.io/library/busybox:latest`."""
    return str(parse(ref))


def familiar(ref: str) -> str:
    """`docker.io/library/busybox:latest` -> `busybox:latest`."""
    return parse(ref).familiar()


def is_image_id(s: str) -> bool:
    """A full image id: `sha256:<64 hex>` or the bare 64 hex digits."""
    return bool(SHA256_DIGEST_RE.match(s) or HEX64_RE.match(s))


def is_id_prefix(s: str) -> bool:
    """Could be a (short) image id: hex, optionally prefixed with `sha256:`."""
    h = s[7:] if s.startswith("sha256:") else s
    return bool(h) and len(h) <= 64 and all(c in "0123456789abcdef" for c in h)
