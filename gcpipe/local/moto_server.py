"""moto's server mode (moto 5.2.5), at the request rate of a soak.

Gap closed: for every request, moto's ``DomainDispatcherApplication.get_application`` resolves the
service under one global lock, and on the way lists moto's package directory (``list_of_moto_modules``:
``os.listdir`` plus an ``isdir`` per entry, about 1.4 ms). Every AWS call of every worker, poller and
Step Functions task waits in that lock. ``listed_once`` lists the directory once: moto's modules do not
change while it runs.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable


def listed_once(original: Callable[[], Iterable[str]]) -> Callable[[], tuple[str, ...]]:
    """``moto.backends.list_of_moto_modules``, listed on its first call and remembered."""

    @functools.cache
    def list_of_moto_modules() -> tuple[str, ...]:
        return tuple(original())

    return list_of_moto_modules


__all__ = ["listed_once"]
