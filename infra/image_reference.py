"""Container image references, by the OCI distribution reference grammar.

The grammar is the one of github.com/distribution/reference (reference.go's comment and regexp.go):
  reference := name [ ":" tag ] [ "@" digest ]
  name      := [ domain "/" ] path-component [ "/" path-component ]*
  domain    := host [ ":" port ] ; host is a dotted name of [a-zA-Z0-9-] components or "[" IPv6 "]"
  path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
  tag       := [\\w][\\w.-]{0,127}
  digest    := algorithm ":" hex{32,}, algorithm := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
and a name of at most 255 characters. Written here from the grammar, not copied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE_RE = re.compile(rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII)
NAME_MAX_LENGTH = 255


@dataclass(frozen=True)
class ImageReference:
    name: str
    domain: str | None
    path: str
    tag: str | None
    digest: str | None


def parse_reference(text: str) -> ImageReference | None:
    """The parts of an image reference, or None if it does not follow the grammar.

    As in distribution/reference, the first component is a registry only when it has a dot, a port,
    or is `localhost`: `acme/web` is a path on Docker Hub, `registry.example.com:5000/acme/web` is not.
    """
    match = REFERENCE_RE.fullmatch(text)
    if not match or len(match.group("name")) > NAME_MAX_LENGTH:
        return None
    domain, path = match.group("domain"), match.group("path")
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost"):
        # A first component without a dot or port is a path component, which must be lower case.
        if not re.fullmatch(_PATH_COMPONENT, domain, re.ASCII):
            return None
        domain, path = None, f"{domain}/{path}"
    return ImageReference(match.group("name"), domain, path, match.group("tag"), match.group("digest"))
