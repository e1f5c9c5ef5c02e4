"""The HTTP transport under ``GenesysClient`` and ``TokenProvider``: one urllib3 pool, timeouts, failure names.

urllib3, not requests: botocore (in the Lambda runtime) already loads urllib3, so the Genesys
client costs no import time of its own, where requests added 15-50 ms of cold start and about
0.5 MiB (with charset_normalizer, idna, certifi) to the asset.
"""

from __future__ import annotations

import urllib3
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util.retry import Retry

POOL_MAXSIZE = 10  # one Lambda invocation at a time, but tests and the error logger may share a client across threads


def http_pool() -> urllib3.PoolManager:
    """The pool shared by the API calls and the token endpoint: keep-alive connections across invocations."""
    retry = Retry(
        total=1,
        connect=1,  # connection not established: nothing was sent
        read=False,  # a read error may follow a landed write: surface it
        status=0,
        other=0,
        redirect=False,  # a 3xx is answered as is (an error): never replay a write, or a secret, elsewhere
        allowed_methods=frozenset({"GET"}),  # moot with read=False and status=0: nothing sent is ever retried
        raise_on_status=False,
        respect_retry_after_header=False,  # 429 handling is the client's (error taxonomy)
        backoff_factor=0.1,
    )
    return urllib3.PoolManager(num_pools=2, maxsize=POOL_MAXSIZE, retries=retry)


def request_timeout(connect_read: tuple[float, float]) -> urllib3.Timeout:
    connect, read = connect_read
    return urllib3.Timeout(connect=connect, read=read)


def _reason(exc: BaseException) -> BaseException:
    # An exhausted retry (the connect retry) wraps the failure in MaxRetryError; a read error comes bare.
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return exc.reason
    return exc


def is_timeout(exc: BaseException) -> bool:
    return isinstance(_reason(exc), Urllib3TimeoutError)


def failure_name(exc: BaseException) -> str:
    """The failure's class name (NewConnectionError, ReadTimeoutError, ...), never its text, which quotes the URL."""
    return type(_reason(exc)).__name__
