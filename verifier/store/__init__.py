"""The only place that touches the database: records scans and reads them back as model types."""

from verifier.store.database import Store

__all__ = ["Store"]
