"""Trino: the central query layer of the lake profile.

Trino's Iceberg connector reads the very catalog the IO manager writes (the PostgreSQL JDBC
catalog), so every data product is queryable as ``iceberg.<domain>.<table>`` the moment it is
published. Assets that push SQL down to Trino, and the maintenance jobs, use this resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from mesh_assets.resources import MeshResource
from mesh_assets.settings import Profile

if TYPE_CHECKING:
    import pandas as pd


class TrinoUnavailableError(RuntimeError):
    """Trino is not part of this profile or does not answer; the message says what to do."""


class TrinoResource(dg.ConfigurableResource):
    """A Trino client for the profile's ``iceberg`` catalog (connection details from settings)."""

    mesh: MeshResource
    request_timeout: float = 300.0

    def _connect(self, schema: str | None = None):
        import trino  # imported here: code locations that never query Trino do not pay for it

        settings = self.mesh.settings
        if settings.profile is not Profile.LAKE:
            raise TrinoUnavailableError(
                f"Trino serves the lake profile only (this is {settings.profile.value!r}): "
                "run with --profile lake (MESH_PROFILE=lake) after `mesh infra up`"
            )
        return trino.dbapi.connect(
            host=settings.host,
            port=settings.ports.trino,
            user=settings.query_user,
            catalog=settings.trino_catalog,
            schema=schema,
            http_scheme="http",
            request_timeout=self.request_timeout,
        )

    def _run(
        self, sql: str, params: Sequence[Any] | None, schema: str | None
    ) -> tuple[list[tuple], list[str]]:
        import trino

        connection = self._connect(schema)
        try:
            cursor = connection.cursor()
            cursor.execute(sql, params) if params else cursor.execute(sql)
            rows = cursor.fetchall()
            return rows, [d[0] for d in cursor.description or []]
        except trino.exceptions.TrinoConnectionError as exc:
            settings = self.mesh.settings
            raise TrinoUnavailableError(
                f"Trino does not answer at {settings.trino_url}: start it with `mesh infra up` ({exc})"
            ) from exc
        finally:
            connection.close()

    def execute(
        self, sql: str, params: Sequence[Any] | None = None, *, schema: str | None = None
    ) -> list[tuple]:
        """Run one statement and return all rows (DDL/DML return their row counts)."""
        return self._run(sql, params, schema)[0]

    def query(
        self, sql: str, params: Sequence[Any] | None = None, *, schema: str | None = None
    ) -> pd.DataFrame:
        """Run a SELECT and return the result as a DataFrame."""
        import pandas as pd

        rows, columns = self._run(sql, params, schema)
        return pd.DataFrame.from_records(rows, columns=columns)
