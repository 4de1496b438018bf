"""The store contract: one transaction commits state and the jobs it causes.

Both engines (SQLite embedded, PostgreSQL for several replicas) implement ``Store``;
the same contract tests run against each. A unit of work is a plain synchronous
function of a ``Tx``: it reads state, calls the pure lifecycle, writes the result.
``Store.run`` commits it (or raises ``StoreError``) before the caller answers 2xx.

Why synchronous units: the lifecycle is pure Python with no awaits, so a unit never
waits on the network while holding a transaction, and the SQLite engine can batch
many units into one commit (group commit) on its writer thread.
"""

from __future__ import annotations

from router.app.ports import Store, StoreError

__all__ = ["Store", "StoreError", "open_store"]


def open_store(url: str) -> Store:
    """Pick the engine from the URL scheme (not yet opened: call ``open``)."""
    if url.startswith("sqlite://"):
        from router.adapters.store.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from router.adapters.store.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise StoreError(f"unsupported store url scheme: {url.split(':', 1)[0]}")
