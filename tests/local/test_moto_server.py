"""Adapter: moto's server lists its package directory once, not on every request (moto_server)."""

from __future__ import annotations


def test_moto_s_modules_are_listed_once_while_the_adapters_are_installed(aws, monkeypatch):
    import os

    from moto import backends

    from gcpipe.local import moto_patches

    # Given moto's directory listings counted
    listings: list[str] = []
    listdir = os.listdir
    monkeypatch.setattr(backends.os, "listdir", lambda path: listings.append(path) or listdir(path))
    # When the server asks for moto's modules, as it does per request, with the adapters installed
    first = backends.list_of_moto_modules()
    for _ in range(5):
        assert "sqs" in backends.list_of_moto_modules() and "stepfunctions" in backends.list_of_moto_modules()
    # Then the directory was listed at most once (moto alone: once per request)
    assert len(listings) <= 1 and "awslambda" in first
    moto_patches.remove()
    for _ in range(3):
        assert "sqs" in backends.list_of_moto_modules()
    assert len(listings) >= 3
    moto_patches.install()  # the fixture removes them again
