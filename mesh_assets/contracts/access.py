"""Who may read and write each product: the access policy the contracts declare (federated governance).

Each domain decides who reads its products, in the product's ODCS contract (``roles``):

.. code-block:: yaml

    roles:
      - role: climate-analysts            # a team of governance/teams.yaml (people, as Trino users)
        access: read
      - role: domain:portfolio_alignment  # another domain's pipelines (its code location)
        access: read
        customProperties:
          - property: withheldColumns     # columns this reader may not read
            value: [market_cap]
          - property: rowFilter           # rows this reader sees (a SQL predicate on the product)
            value: "sector <> 'Coal'"

The owning domain alone writes its namespace; nobody else reads what no contract allows. One
policy feeds every enforcement point, so a refusal says the same thing wherever it happens: the
platform's own checks before a read or write (:class:`ReadGrant`, carried to the IO manager of a
domain's code location), ``mesh validate`` (unknown readers or columns, a cross-domain read that
no contract allows) and Trino's file-based access control rules (:func:`trino_rules`).

Contracts are read here with plain YAML (not the ODCS model): a code location reads the grants
of the products it consumes when it loads, and that must stay cheap (``mesh bench load``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh_assets.contracts.model import CONTRACT_SUFFIX, read_yaml
from mesh_assets.lakehouse.access import AccessDenied, StorageGrant
from mesh_assets.settings import REPO_ROOT

DOMAIN_PREFIX = "domain:"
TEAMS_FILE = REPO_ROOT / "governance" / "teams.yaml"
WITHHELD = "withheldColumns"
ROW_FILTER = "rowFilter"
# A domain's schema and its dbt staging schema (``<domain>_staging``, mesh_assets.dbt.runtime),
# as a regex suffix: not ``(_.*)?``, which would hand ``<domain>_x``, another domain's schema, to it.
STAGING_SCHEMA = "(_staging)?"


class AccessPolicyError(ValueError):
    """A contract's access declaration is malformed (unknown property, wrong value type)."""


def domain_principal(domain: str) -> str:
    return f"{DOMAIN_PREFIX}{domain}"


def product_name(key: Iterable[str]) -> str:
    return "/".join(key)


@dataclass(frozen=True)
class Grant:
    """One reader of one product, with what is withheld from it."""

    principal: str  # "domain:<name>" or a team name
    withheld: tuple[str, ...] = ()
    row_filter: str | None = None


@dataclass(frozen=True)
class ProductAccess:
    """The access declaration of one product's contract."""

    key: tuple[str, str]
    contract: Path
    columns: tuple[str, ...]
    grants: tuple[Grant, ...]

    @property
    def owner(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return product_name(self.key)

    @property
    def contract_label(self) -> str:
        path = self.contract
        return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)

    def grant(self, principal: str) -> Grant | None:
        return next((g for g in self.grants if g.principal == principal), None)

    def denied(self, principal: str, what: str = "read") -> AccessDenied:
        return AccessDenied(
            f"{principal} may not {what} {self.name}: its contract {self.contract_label} does not list "
            f"{principal!r} among its readers (add `- role: {principal}` with `access: read` to its roles, "
            f"a decision of the {self.owner} domain)"
        )


def _custom(role: Mapping[str, Any], name: str) -> Any:
    for entry in role.get("customProperties") or []:
        if entry.get("property") == name:
            return entry.get("value")
    return None


def product_access(path: Path) -> ProductAccess:
    """The access declaration of the contract at ``path`` (YAML only: cheap enough for a location's load)."""
    raw = read_yaml(path) or {}
    key = (str(raw.get("domain")), str(raw.get("dataProduct")))
    columns = tuple(str(p["name"]) for obj in raw.get("schema") or [] for p in obj.get("properties") or [])
    grants = []
    for role in raw.get("roles") or []:
        if not role.get("role") or (role.get("access") or "read") != "read":
            continue
        withheld = _custom(role, WITHHELD) or []
        row_filter = _custom(role, ROW_FILTER)
        if not isinstance(withheld, list) or not all(isinstance(c, str) for c in withheld):
            raise AccessPolicyError(f"{path}: role {role['role']}: {WITHHELD} must be a list of column names")
        if row_filter is not None and not (isinstance(row_filter, str) and row_filter.strip()):
            raise AccessPolicyError(f"{path}: role {role['role']}: {ROW_FILTER} must be a SQL predicate")
        grants.append(Grant(str(role["role"]), tuple(withheld), row_filter))
    return ProductAccess(key, path, columns, tuple(grants))


def contract_path(contracts_dir: Path, product: str) -> Path:
    """The contract of ``product`` in a domain's contracts folder (named after the product)."""
    return contracts_dir / f"{product}{CONTRACT_SUFFIX}"


def read_grants(domain: str, contracts: Iterable[Path]) -> dict[str, StorageGrant]:
    """The grants of ``domain``'s pipelines on the other domains' products it consumes.

    ``contracts``: the contract file of each consumed product. A product without one is not
    governed by a contract: nothing to grant or refuse here (``mesh validate`` reports it).
    """
    principal = domain_principal(domain)
    out: dict[str, StorageGrant] = {}
    for path in contracts:
        if not path.is_file():
            continue
        access = product_access(path)
        grant = access.grant(principal)
        if grant is None:
            out[access.name] = StorageGrant(False, str(access.denied(principal)))
        else:
            out[access.name] = StorageGrant(True, "", grant.withheld, grant.row_filter)
    return out


# ---- the whole mesh's policy ------------------------------------------------------------------
@dataclass(frozen=True)
class Team:
    name: str
    members: tuple[str, ...]  # Trino user names
    description: str = ""


def load_teams(path: Path = TEAMS_FILE) -> dict[str, Team]:
    raw = read_yaml(path) if path.is_file() else {}
    teams = {}
    for name, body in ((raw or {}).get("teams") or {}).items():
        members = (body or {}).get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
            raise AccessPolicyError(f"{path}: team {name}: members must be a list of user names")
        teams[str(name)] = Team(str(name), tuple(members), str((body or {}).get("description") or ""))
    return teams


@dataclass(frozen=True)
class AccessPolicy:
    """Every product's declaration, the teams and the domains of the workspace."""

    products: dict[tuple[str, str], ProductAccess]
    teams: dict[str, Team]
    domains: tuple[str, ...]
    consumption: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # domain -> reads

    def domain_reads(self) -> dict[str, list[tuple[str, str]]]:
        """Per domain, the other domains' products whose contracts list it as a reader."""
        reads: dict[str, list[tuple[str, str]]] = {}
        for key, access in sorted(self.products.items()):
            for grant in access.grants:
                if grant.principal.startswith(DOMAIN_PREFIX):
                    reads.setdefault(grant.principal[len(DOMAIN_PREFIX) :], []).append(key)
        return reads

    def problems(self) -> list[tuple[str, str]]:
        """``(product, sentence)`` for each reader or column a contract names that does not exist, and
        each cross-domain read no contract allows."""
        found: list[tuple[str, str]] = []
        for access in self.products.values():
            for grant in access.grants:
                if grant.principal.startswith(DOMAIN_PREFIX):
                    if grant.principal[len(DOMAIN_PREFIX) :] not in self.domains:
                        found.append(
                            (
                                access.name,
                                f"{access.contract_label}: reader {grant.principal!r} is not a domain of the "
                                f"workspace ({', '.join(self.domains)})",
                            )
                        )
                elif grant.principal not in self.teams:
                    found.append(
                        (
                            access.name,
                            f"{access.contract_label}: reader {grant.principal!r} is neither a team of "
                            f"{TEAMS_FILE.relative_to(REPO_ROOT)} ({', '.join(sorted(self.teams))}) nor "
                            f"'{DOMAIN_PREFIX}<domain>'",
                        )
                    )
                unknown = sorted(set(grant.withheld) - set(access.columns))
                if unknown:
                    found.append(
                        (
                            access.name,
                            f"{access.contract_label}: {WITHHELD} of {grant.principal!r} names columns the "
                            f"product does not have: {unknown}",
                        )
                    )
        for domain, keys in sorted(self.consumption.items()):
            principal = domain_principal(domain)
            for key in keys:
                access = self.products.get(key)
                if access is None:
                    found.append(
                        (product_name(key), f"{domain} reads {product_name(key)}, which has no contract")
                    )
                elif access.grant(principal) is None:
                    found.append((access.name, str(access.denied(principal))))
        return found

    def may_read(self, principal: str, key: tuple[str, str]) -> Grant | None:
        access = self.products[key]
        if principal == domain_principal(access.owner):
            return Grant(principal)
        return access.grant(principal)


def trino_rules(
    policy: AccessPolicy,
    catalog: str,
    *,
    orchestrator: str,
    domain_user: str = "mesh_{domain}",
    admins: Iterable[str] = (),
    monitors: Iterable[str] = (),
) -> dict[str, Any]:
    """Trino's file-based access control rules (``rules.json``) for ``policy`` on ``catalog``.

    * each domain's pipelines connect as ``domain_user`` (``mesh_<domain>``): owner of its schema,
      every privilege on its tables; SELECT on the products whose contracts list it;
    * a team's members get SELECT on the products whose contracts list the team, with the
      contract's withheld columns denied and its row filter applied;
    * the orchestrator (the platform's own service user) may impersonate domain users only;
    * ``admins`` may do everything (the platform team's break-glass account);
    * ``monitors`` may open the catalog and list what they are allowed to see (a health check);
    * anything not matched is denied (Trino's rules are first-match, default deny).
    """

    def users(names: Iterable[str]) -> str:
        return "|".join(re.escape(n) for n in sorted(set(names)))

    domain_users = {d: domain_user.format(domain=d) for d in policy.domains}
    admins = sorted(admins)
    catalogs: list[dict[str, Any]] = []
    schemas: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    if admins:
        catalogs.append({"user": users(admins), "allow": "all"})
        schemas.append({"user": users(admins), "owner": True})
        tables.append(
            {"user": users(admins), "privileges": ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP"]}
        )
    # Trino's own metadata tables (the catalog rule below opens the catalog read-only; a table rule
    # must allow their SELECT too): dbt-trino reads system.metadata.materialized_views, for instance.
    # What they list is filtered by these same rules.
    tables.append({"catalog": "system", "privileges": ["SELECT"]})
    everyone = [*domain_users.values(), *(m for t in policy.teams.values() for m in t.members)]
    catalogs.append({"user": users(everyone), "catalog": re.escape(catalog), "allow": "all"})
    monitors = sorted(monitors)
    if monitors:
        catalogs.append({"user": users(monitors), "catalog": re.escape(catalog), "allow": "read-only"})
    catalogs.append({"catalog": "system", "allow": "read-only"})  # Trino's own metadata tables
    catalogs.append({"allow": "none"})
    for domain, user in sorted(domain_users.items()):
        schemas.append(
            {
                "user": re.escape(user),
                "catalog": re.escape(catalog),
                "schema": re.escape(domain) + STAGING_SCHEMA,
                "owner": True,
            }
        )
    for key, access in sorted(policy.products.items()):
        owner = re.escape(domain_users.get(access.owner, domain_user.format(domain=access.owner)))
        table = {"catalog": re.escape(catalog), "schema": re.escape(key[0]), "table": re.escape(key[1])}
        tables.append(
            {"user": owner, **table, "privileges": ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP"]}
        )
        for grant in access.grants:
            if grant.principal.startswith(DOMAIN_PREFIX):
                readers = [domain_users.get(grant.principal[len(DOMAIN_PREFIX) :], "")]
            else:
                readers = (
                    list(policy.teams[grant.principal].members) if grant.principal in policy.teams else []
                )
            readers = [r for r in readers if r]
            if not readers:
                continue
            rule: dict[str, Any] = {"user": users(readers), **table, "privileges": ["SELECT"]}
            if grant.withheld:
                rule["columns"] = [{"name": c, "allow": False} for c in grant.withheld]
            if grant.row_filter:
                rule["filter"] = grant.row_filter
            tables.append(rule)
    # the domain schema's other tables, and its dbt staging schema's, belong to their domain only
    for domain, user in sorted(domain_users.items()):
        tables.append(
            {
                "user": re.escape(user),
                "catalog": re.escape(catalog),
                "schema": re.escape(domain) + STAGING_SCHEMA,
                "privileges": ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP"],
            }
        )
    return {
        "catalogs": catalogs,
        "schemas": schemas,
        "tables": tables,
        "impersonation": [
            {
                "original_user": re.escape(orchestrator),
                "new_user": users(domain_users.values()),
                "allow": True,
            },
            {"original_user": ".*", "new_user": ".*", "allow": False},
        ],
    }


def contracts_dir(module_name: str) -> Path | None:
    """A domain's contracts folder, beside its code location's module (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "contracts"
    return folder if folder.is_dir() else None


def load_policy(
    folders: Mapping[str, Path], consumption: Mapping[str, Iterable[tuple[str, str]]] | None = None
) -> AccessPolicy:
    """The policy of the domains whose contracts are in ``folders`` (domain -> contracts folder).

    ``consumption`` (domain -> the other domains' products it reads) adds the cross-domain reads to
    check; the workspace's definitions know them (``mesh validate`` loads them anyway).
    """
    products: dict[tuple[str, str], ProductAccess] = {}
    for folder in folders.values():
        for path in sorted(folder.glob(f"*{CONTRACT_SUFFIX}")):
            access = product_access(path.resolve())
            products[access.key] = access
    consumed = {d: tuple(sorted(keys)) for d, keys in (consumption or {}).items()}
    return AccessPolicy(products, load_teams(), tuple(folders), consumed)


def workspace_policy(workspace_file: Path) -> AccessPolicy:
    """The policy of every domain of ``workspace_file`` (a location with a contracts folder is a domain)."""
    from mesh_assets.workspace import locations

    folders = {}
    for location in locations(workspace_file):
        folder = contracts_dir(location.module_name)
        if folder is not None and location.owns_contracts:
            folders[location.name] = folder
    return load_policy(folders)
