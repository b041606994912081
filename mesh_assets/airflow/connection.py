"""Where a domain's Airflow is and how to talk to it: URL, credentials, major version.

One :class:`AirflowConnection` per Airflow deployment. The URL defaults to the local one
(``http://<host>:<airflow port>`` of the settings, what ``deploy/local/airflow.sh`` starts); a team
with its own Airflow names it in ``domains/<domain>/airflow.yaml``. The password is a secret like the
others: ``MESH_<NAME>`` or ``$MESH_HOME/secrets/<name>`` (``airflow_password`` unless the yaml names
another), read through :meth:`MeshSettings.secret` and never shown (``repr=False``).

The major version decides the client: Airflow 2 is dagster-airlift's own ``AirflowInstance`` with
basic auth (``/api/v1``); Airflow 3 is the platform's adapter (:mod:`mesh_assets.airflow.v3`, JWT,
``/api/v2``). ``version: auto`` (the default) asks the server: Airflow 3's health endpoint lives
under ``/api/v2``, Airflow 2's under ``/api/v1``; neither needs credentials.

Every failure to reach or use Airflow becomes an :class:`AirflowBridgeError` whose message is one
sentence saying what to do (:func:`explain`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesh_assets.settings import MeshSettings

if TYPE_CHECKING:
    import requests
    from dagster_airlift.core import AirflowInstance

DEFAULT_USER = "mesh"
DEFAULT_PASSWORD_SECRET = "airflow_password"
TIMEOUT = 30.0  # seconds for one HTTP call to Airflow (a SQLite Airflow on 2 cores can be slow)


class AirflowBridgeError(RuntimeError):
    """Airflow is unreachable, refused the credentials, or a DAG cannot run; one actionable sentence."""


class AirflowUnreachable(AirflowBridgeError):
    pass


class AirflowCredentialsRejected(AirflowBridgeError):
    pass


class DagNotRunnable(AirflowBridgeError):
    """The DAG is missing, paused, or its run failed or timed out."""


@dataclass(frozen=True)
class AirflowConnection:
    """An Airflow deployment: ``url``, ``username``, the password (never shown) and its major version."""

    url: str
    username: str
    password: str = field(repr=False)
    version: int | None = None  # 2 or 3; None: ask the server (detect())
    password_source: str = DEFAULT_PASSWORD_SECRET  # where the password came from, for messages

    @classmethod
    def from_settings(
        cls,
        settings: MeshSettings,
        *,
        url: str | None = None,
        username: str | None = None,
        password_secret: str = DEFAULT_PASSWORD_SECRET,
        version: int | str | None = None,
    ) -> AirflowConnection:
        """The connection of ``settings`` (local Airflow by default), the password from the secrets."""
        try:
            password = settings.secret(password_secret)
        except RuntimeError as exc:
            raise AirflowCredentialsRejected(
                f"no Airflow password: {exc} (`mesh infra up airflow` generates it for the local Airflow)"
            ) from None
        return cls(
            url=(url or local_url(settings)).rstrip("/"),
            username=username or DEFAULT_USER,
            password=password,
            version=_version(version),
            password_source=f"MESH_{password_secret.upper()} or {settings.secrets_dir / password_secret}",
        )

    def detect(self) -> AirflowConnection:
        """This connection with its major version, asked from the server if not given."""
        if self.version is not None:
            return self
        import requests

        try:
            if requests.get(f"{self.url}/api/v2/monitor/health", timeout=TIMEOUT).status_code == 200:
                return _replace(self, version=3)
            if requests.get(f"{self.url}/api/v1/health", timeout=TIMEOUT).status_code == 200:
                return _replace(self, version=2)
        except requests.RequestException as exc:
            raise explain(exc, self) from None
        raise AirflowUnreachable(
            f"{self.url} answers but is not an Airflow 2 or 3 API server (no /api/v1/health or "
            "/api/v2/monitor/health): check the url in airflow.yaml"
        )

    def instance(self, name: str) -> AirflowInstance:
        """dagster-airlift's client for this Airflow (the adapter for Airflow 3)."""
        conn = self.detect()
        if conn.version == 3:
            from mesh_assets.airflow.v3 import Airflow3Instance, AirflowJwtAuthBackend

            return Airflow3Instance(
                auth_backend=AirflowJwtAuthBackend(
                    conn.url, conn.username, conn.password, conn.password_source
                ),
                name=name,
            )
        from dagster_airlift.core import AirflowBasicAuthBackend, AirflowInstance

        return AirflowInstance(
            auth_backend=AirflowBasicAuthBackend(
                webserver_url=conn.url, username=conn.username, password=conn.password
            ),
            name=name,
        )

    def check(self, name: str = "mesh_check") -> AirflowInstance:
        """An instance after one authenticated call succeeded; AirflowBridgeError otherwise."""
        instance = self.instance(name)
        response = call(instance, "get", "/dags", params={"limit": 1})
        if response.status_code != 200:
            raise explain(response, self)
        return instance


def local_url(settings: MeshSettings) -> str:
    """The local Airflow's URL (what ``mesh infra up airflow`` starts), the default of a domain's yaml."""
    return f"http://{settings.host}:{settings.ports.airflow}"


def _replace(conn: AirflowConnection, **changes: Any) -> AirflowConnection:
    import dataclasses

    return dataclasses.replace(conn, **changes)


def _version(raw: int | str | None) -> int | None:
    if raw in (None, "", "auto"):
        return None
    match = re.match(r"^\s*(\d+)", str(raw))
    if not match or int(match.group(1)) not in (2, 3):
        raise AirflowBridgeError(
            f"Airflow version {raw!r} is not supported: use 2, 3 or auto in airflow.yaml"
        )
    return int(match.group(1))


def call(instance: AirflowInstance, method: str, path: str, **kwargs: Any) -> requests.Response:
    """One REST call relative to the instance's API base, network errors as AirflowBridgeError."""
    import requests

    kwargs.setdefault("timeout", TIMEOUT)
    try:
        session = instance.auth_backend.get_session()
        return session.request(method.upper(), f"{instance.get_api_url()}{path}", **kwargs)
    except AirflowBridgeError:
        raise
    except requests.RequestException as exc:
        raise explain(exc, url=instance.auth_backend.get_webserver_url()) from None


def explain(
    problem: BaseException | requests.Response,
    conn: AirflowConnection | None = None,
    *,
    url: str | None = None,
    what: str = "",
) -> AirflowBridgeError:
    """One actionable sentence for a failed call to Airflow (an exception or an HTTP response)."""
    import requests

    url = url or (conn.url if conn else "Airflow")
    if isinstance(problem, requests.Response):
        status = problem.status_code
        if status in (401, 403):
            who = f"user {conn.username!r}" if conn else "the mesh's user"
            where = (
                conn.password_source if conn else "MESH_AIRFLOW_PASSWORD or the airflow_password secret file"
            )
            return AirflowCredentialsRejected(
                f"Airflow at {url} rejected the credentials of {who} (HTTP {status}): "
                f"set the right password in {where}"
            )
        detail = _detail(problem)
        return AirflowBridgeError(f"Airflow at {url} answered HTTP {status}{what}: {detail}")
    if isinstance(problem, requests.ConnectionError | requests.Timeout):
        reason = "timed out" if isinstance(problem, requests.Timeout) else "refused the connection"
        return AirflowUnreachable(
            f"Airflow at {url} is unreachable ({reason}): start it (`mesh infra up airflow` for the local one) "
            "or fix the url in the domain's airflow.yaml (MESH_PORT_AIRFLOW for the local one)"
        )
    return AirflowBridgeError(f"calling Airflow at {url} failed: {problem}")


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]
