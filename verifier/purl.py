"""Package URLs (purl) for models, built with packageurl-python: one place for every format.

packageurl is imported when a purl is first built: a scan of a local file names none, and the
import is a measurable part of a small scan's start-up.
"""

from __future__ import annotations


def huggingface_purl(namespace: str, name: str, commit: str | None) -> str:
    """`pkg:huggingface/<namespace>/<name>@<commit>` (the version only when pinned)."""
    from packageurl import PackageURL

    purl = PackageURL(type="huggingface", namespace=namespace, name=name, version=commit)
    return purl.to_string()


def hub_purl(repo_id: str, commit: str | None) -> str:
    """The purl of a Hub repository `namespace/name` (a name without namespace stands alone)."""
    from packageurl import PackageURL

    namespace, _, name = repo_id.rpartition("/")
    return PackageURL(
        type="huggingface", namespace=namespace or None, name=name, version=commit
    ).to_string()


def generic_purl(name: str, *, sha256: str | None = None) -> str:
    """`pkg:generic/<name>`, with `?checksum=sha256:<hex>` when the content digest is known."""
    from packageurl import PackageURL

    qualifiers = {"checksum": f"sha256:{sha256}"} if sha256 else None
    return PackageURL(type="generic", name=name, qualifiers=qualifiers).to_string()
