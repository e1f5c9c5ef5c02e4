"""Reversible monkeypatches of moto internals.

Every adapter in this package closes a measured moto 5.2.5 gap by replacing
one attribute of one moto class or module. They all go through ``replace`` so
that ``restore_all`` can put moto back exactly as it was (tests that use plain
``mock_aws`` in the same process must not see our behaviour). Each patch is
keyed by (owner, name): installing twice is a no-op.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_originals: dict[tuple[int, str], tuple[Any, str, Any]] = {}


def replace(owner: Any, name: str, new: Any) -> Any:
    """Set ``owner.name = new`` and return the original (the first one, if already patched)."""
    with _lock:
        key = (id(owner), name)
        if key in _originals:
            setattr(owner, name, new)
            return _originals[key][2]
        original = owner.__dict__[name] if name in getattr(owner, "__dict__", {}) else getattr(owner, name)
        _originals[key] = (owner, name, original)
        setattr(owner, name, new)
        return original


def original(owner: Any, name: str) -> Any:
    entry = _originals.get((id(owner), name))
    return entry[2] if entry else getattr(owner, name)


def is_patched(owner: Any, name: str) -> bool:
    return (id(owner), name) in _originals


def restore_all() -> None:
    with _lock:
        for owner, name, value in reversed(list(_originals.values())):
            setattr(owner, name, value)
        _originals.clear()
