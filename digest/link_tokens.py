"""Signed tokens of the links in digests: what rendering writes (digest.rendering.links) and the counting
redirect reads (digest.returns.links), over (issue, URL) only: never a reader."""

from django.core import signing

SALT = "digest.link"


def link_token(*, issue_id: int, url: str) -> str:
    """The signed token of one link of one issue."""
    return signing.Signer(salt=SALT).sign_object({"i": issue_id, "u": url}, compress=True)


def link_read(token: str) -> tuple[int, str]:
    """The (issue id, URL) a token was made for; raises signing.BadSignature for anything else."""
    value = signing.Signer(salt=SALT).unsign_object(token)
    if not isinstance(value, dict) or not isinstance(value.get("i"), int) or not isinstance(value.get("u"), str):
        raise signing.BadSignature("not a link token")
    if not value["u"].lower().startswith(("http://", "https://")):
        raise signing.BadSignature("not a web address")
    return value["i"], value["u"]
