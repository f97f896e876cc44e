"""free_port: a port a server can bind, that no outgoing connection can take first."""
from __future__ import annotations

import socket

import pytest

from server.adapters import embedded_nats
from server.adapters.embedded_nats import free_port


def test_ports_are_bindable_distinct_and_below_the_ephemeral_range() -> None:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
        low = int(ports.read().split()[0])
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        assert 1024 <= port < low
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(embedded_nats, "_ephemeral_low", lambda: busy + 1)
        monkeypatch.setattr(embedded_nats.random, "choice", lambda ports: busy)
        port = free_port()  # every pick below is the busy port: falls back to any free one
        assert port != busy
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
