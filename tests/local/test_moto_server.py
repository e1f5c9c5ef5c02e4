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


def test_the_server_serves_moto_and_its_stop_ends_the_thread_and_frees_the_port():
    import socket

    import boto3

    from gcpipe.local.moto_server import MotoServer

    # Given moto's server on an ephemeral port
    server = MotoServer()
    server.start()
    host, port = server.get_host_and_port()
    try:
        # When a client creates a queue there
        sqs = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        url = sqs.create_queue(QueueName="moto-server-test")["QueueUrl"]
        # Then moto answered it
        assert url in sqs.list_queues()["QueueUrls"]
    finally:
        server.stop()
    # And after stop nothing listens there any more
    with socket.socket() as probe:
        assert probe.connect_ex((host, port)) != 0
    server.stop()  # a second stop is harmless
