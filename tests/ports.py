"""Free loopback ports for a private service of a test (never a default port of the platform)."""

from __future__ import annotations

import socket

from mesh_assets.settings import DEFAULT_PORTS


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nobody listens on now, none a platform default, none in Ceph's range."""
    taken = set(DEFAULT_PORTS.values())
    ports: list[int] = []
    sockets = []
    while len(ports) < count:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)  # held until all are chosen: no port is handed out twice
        port = sock.getsockname()[1]
        # Ceph's OSD and mgr pick their own ports in 6800-7300: stay out of that range
        if port not in taken and not 6800 <= port <= 7300:
            ports.append(port)
    for sock in sockets:
        sock.close()
    return ports
