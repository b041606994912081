"""The platform's own access checks at the storage edge, before any read or write of a product.

A domain's code location hands its IO manager the grants its contracts-derived policy gives it
(``mesh_assets.contracts.access.read_grants``): for each product of another domain it reads, may
it read it, which columns are withheld and which rows it sees. The checks here run in every
profile, so a domain learns of a violation on a laptop with the same sentence the lake's own
enforcement (Trino's rules, the catalog database, the object store) gives in production.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class AccessDenied(Exception):
    """A principal tried to read or write a product its contract does not open to it.

    Not an ``OSError`` (as PermissionError is): storage errors are re-worded as connectivity
    problems, and a refusal must keep its own sentence.
    """


@dataclass(frozen=True)
class StorageGrant:
    """What one domain may read of one other domain's product."""

    allowed: bool
    message: str = ""
    withheld: tuple[str, ...] = ()
    row_filter: str | None = None


def encode_grants(grants: Mapping[str, StorageGrant]) -> str:
    """The grants as the IO manager's ``read_grants`` config (JSON by product ``<domain>/<name>``)."""
    return json.dumps(
        {
            name: {
                "allowed": g.allowed,
                "message": g.message,
                "withheld": list(g.withheld),
                "row_filter": g.row_filter,
            }
            for name, g in sorted(grants.items())
        }
    )


def parse_grants(text: str) -> dict[str, StorageGrant]:
    """The IO manager's ``read_grants`` config (JSON by product ``<domain>/<name>``)."""
    if not text:
        return {}
    return {
        name: StorageGrant(
            bool(g["allowed"]), g.get("message") or "", tuple(g.get("withheld") or ()), g.get("row_filter")
        )
        for name, g in json.loads(text).items()
    }


def check_write(domain: str, product: Sequence[str]) -> None:
    """The owning domain alone writes its namespace."""
    if domain and product[0] != domain:
        name = "/".join(product)
        raise AccessDenied(
            f"domain:{domain} may not write {name}: only the {product[0]} domain writes its namespace "
            f"(publish {domain}'s own product and let {product[0]} read it, if its contract allows)"
        )


def check_read(
    domain: str,
    grants: dict[str, StorageGrant],
    product: Sequence[str],
    columns: Sequence[str] | None,
    all_columns: Sequence[str],
) -> StorageGrant | None:
    """The grant under which ``domain`` reads ``product`` (None: its own product, or ungoverned).

    Refused: a product whose contract does not list the domain, or a read of a withheld column
    (as Trino refuses a query that selects a denied column; select the columns you need instead).
    """
    if not domain or product[0] == domain:
        return None
    name = "/".join(product)
    grant = grants.get(name)
    if grant is None:
        return None  # no contract to say anything: `mesh validate` reports the product itself
    if not grant.allowed:
        raise AccessDenied(grant.message)
    wanted = list(columns) if columns else list(all_columns)
    withheld = sorted(set(grant.withheld) & set(wanted))
    if withheld:
        raise AccessDenied(
            f"domain:{domain} may not read {withheld} of {name}: its contract withholds them from "
            f"domain:{domain} (read the other columns only: metadata={{'columns': [...]}} on the input)"
        )
    return grant
