"""moto's server mode (moto 5.2.5): the server, and its request path at the rate of a soak.

``MotoServer`` is moto's ``ThreadedMotoServer`` (the same WSGI application and request handler) with a
stop that answers at once. moto's serves with socketserver's default poll interval, and its ``stop``
waits for that loop to look: up to 0.5 s at the end of every local run and every e2e test.

Gap closed: for every request, moto's ``DomainDispatcherApplication.get_application`` resolves the
service under one global lock, and on the way lists moto's package directory (``list_of_moto_modules``:
``os.listdir`` plus an ``isdir`` per entry, about 1.4 ms). Every AWS call of every worker, poller and
Step Functions task waits in that lock. ``listed_once`` lists the directory once: moto's modules do not
change while it runs.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Iterable

POLL_SECONDS = 0.05  # how soon the serving loop sees a stop


class MotoServer:
    """moto's server on ``host`` (port 0: an ephemeral one), served from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._host, self._port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name="moto-server", daemon=True
        )
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()


def listed_once(original: Callable[[], Iterable[str]]) -> Callable[[], tuple[str, ...]]:
    """``moto.backends.list_of_moto_modules``, listed on its first call and remembered."""

    @functools.cache
    def list_of_moto_modules() -> tuple[str, ...]:
        return tuple(original())

    return list_of_moto_modules


__all__ = ["MotoServer", "listed_once"]
