"""Constants and helpers shared by the Airflow bridging fixtures and tests (tests/airflow is on sys.path)."""

from __future__ import annotations

import socket

DAG_ID = "companies_vendor_market_data"
# Airflow versions under test and their loopback ports (never 8080, clear of the mesh's defaults)
VERSIONS = {"2": ("2.11.2", 8093), "3": ("3.3.2", 8094)}
TICK = 5  # MESH_TRIGGER_INTERVAL: the trigger sensors' and the Airflow sensor's interval (s)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
