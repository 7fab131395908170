"""Durability: write-ahead log, snapshots, MANIFEST and recovery for one data directory.

Entry points: `open_durable(data_dir, ...) -> (Engine, Durability)`, `Durability.snapshot_now()`,
`Durability.close()`, `state_digest(engine)`, and `RecoveryError` (damage naming file and offset).
They are imported lazily so that the file-format modules load without the engine.
"""

from __future__ import annotations

from typing import Any

from snapshots.frames import RecoveryError

__all__ = ["Durability", "RecoveryError", "open_durable", "state_digest"]


def __getattr__(name: str) -> Any:
    if name in ("Durability", "open_durable"):
        from snapshots import durable

        return getattr(durable, name)
    if name == "state_digest":
        from snapshots.digest import state_digest

        return state_digest
    raise AttributeError(f"module 'snapshots' has no attribute {name!r}")
