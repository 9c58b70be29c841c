"""Package URLs (purl) for models, built with packageurl-python: one place for every format."""

from __future__ import annotations

from packageurl import PackageURL


def huggingface_purl(namespace: str, name: str, commit: str | None) -> str:
    """`pkg:huggingface/<namespace>/<name>@<commit>` (the version only when pinned)."""
    purl = PackageURL(type="huggingface", namespace=namespace, name=name, version=commit)
    return purl.to_string()


def hub_purl(repo_id: str, commit: str | None) -> str:
    """The purl of a Hub repository `namespace/name` (a name without namespace stands alone)."""
    namespace, _, name = repo_id.rpartition("/")
    return PackageURL(
        type="huggingface", namespace=namespace or None, name=name, version=commit
    ).to_string()


def generic_purl(name: str, *, sha256: str | None = None) -> str:
    """`pkg:generic/<name>`, with `?checksum=sha256:<hex>` when the content digest is known."""
    qualifiers = {"checksum": f"sha256:{sha256}"} if sha256 else None
    return PackageURL(type="generic", name=name, qualifiers=qualifiers).to_string()
