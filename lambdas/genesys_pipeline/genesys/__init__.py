"""Genesys Cloud over plain HTTP: OAuth client credentials, a cached token, and the write-back calls.

All Genesys HTTP goes through ``GenesysClient``; it raises the named errors of
``genesys_pipeline.errors`` that the state machine retries (or not) by name.
"""

from __future__ import annotations

from .client import GenesysClient
from .oauth import TokenCache, TokenProvider, clear_token_cache
from .secrets import ClientCredentials, load_client_credentials

__all__ = [
    "ClientCredentials",
    "GenesysClient",
    "TokenCache",
    "TokenProvider",
    "clear_token_cache",
    "load_client_credentials",
]
