"""A pyiceberg transaction whose cost follows the work, not the table's history.

pyiceberg 0.12's ``Transaction.table_metadata`` replays every staged update onto the table's
metadata and then deep-copies the result, every snapshot and log entry included, on *every*
read; one partition overwrite reads it about forty times. On a table written once a day for a
year that made overwriting one partition ~14x slower than on a new table (``mesh bench io``,
apache/iceberg-python#2673, #3301).

:class:`MeshTransaction` computes the view once per staged change and without the deep copy:
the replay is pyiceberg's own update steps (:func:`pyiceberg_internals.replay_updates`), keyed
on the identity of the two inputs, which pyiceberg rebinds, never mutates, whenever they change
(a staged update, a refresh before a commit retry). The commit to a SQL catalog then
builds on that same state (:class:`MeshTable`) instead of re-reading and deep-copying it.
Everything else is stock pyiceberg: the retries on ``CommitFailedException``, the concurrency
validation, the branches.

:class:`MeshSqlCatalog` parses each metadata file once per process: the file at a location never
changes, and a governed write loads its table about five times. It keeps the text of the file's
snapshot array too, so a commit writes its new file without re-serializing the unchanged history.

Remove the transaction when a pyiceberg release caches the view itself (#3302, #3784):
``tests/lakehouse/test_transaction.py`` fails when that happens, or when the internals it
relies on change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table, Transaction

from mesh_assets.lakehouse import pyiceberg_internals as internals

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import IcebergTables as TableRow
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.update import TableRequirement, TableUpdate


class MeshTransaction(Transaction):
    """``Transaction`` with a metadata view computed once per staged change."""

    _view: tuple[TableMetadata, tuple[TableUpdate, ...], TableMetadata] | None

    def __init__(self, table: Table, autocommit: bool = False) -> None:
        super().__init__(table, autocommit=autocommit)
        self._view = None

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates = internals.transaction_state(self)
        view = self._view
        # The cached tuple holds ``base`` and ``updates`` alive, so an identity match cannot be
        # a recycled id of some other object.
        if view is not None and view[0] is base and view[1] is updates:
            return view[2]
        metadata = internals.replay_updates(base, updates)
        self._view = (base, updates, metadata)
        return metadata


class MeshTable(Table):
    """``Table`` whose commits to a SQL catalog build on the state the transaction read.

    pyiceberg's SqlCatalog re-reads, re-parses and deep-copies the whole metadata on every
    commit before its compare-and-swap; :func:`pyiceberg_internals.sql_commit` does the same
    compare-and-swap on the metadata the transaction already holds, and hands any commit whose
    base is no longer current to SqlCatalog unchanged (so conflicts and retries are pyiceberg's).
    """

    @classmethod
    def of(cls, table: Table) -> MeshTable:
        if isinstance(table, MeshTable):
            return table
        return cls(
            internals.table_identifier(table),
            table.metadata,
            table.metadata_location,
            table.io,
            table.catalog,
            config=table.config,
        )

    def _do_commit(
        self, updates: tuple[TableUpdate, ...], requirements: tuple[TableRequirement, ...]
    ) -> None:
        # the catalog's next load or refresh of the table starts from this commit, parsed or not
        parsed = self.catalog.parsed_metadata if isinstance(self.catalog, MeshSqlCatalog) else None
        internals.commit_response(
            self, internals.sql_commit(self.catalog, self, requirements, updates, parsed)
        )
        if parsed is not None:  # a commit SqlCatalog made (a stale base) has no snapshot text
            parsed.put(self.metadata_location, self.metadata)


def transaction(table: Table) -> MeshTransaction:
    """A transaction on ``table`` (what ``table.transaction()`` returns, minus the history cost)."""
    return MeshTransaction(MeshTable.of(table))


class MeshSqlCatalog(SqlCatalog):
    """pyiceberg's SQL catalog, with each metadata file parsed once per process.

    pyiceberg parses the table's whole metadata file (every snapshot ever kept) on every
    ``load_table`` and ``refresh``: on a table written daily for three years that is most of an
    overwrite's cost, paid again at each of a governed write's loads. Everything else (rows,
    namespaces, commits, conflicts) is the stock catalog's.
    """

    def __init__(self, name: str, **properties: str) -> None:
        super().__init__(name, **properties)
        self.parsed_metadata = internals.ParsedMetadata(max_snapshots=METADATA_CACHE_SNAPSHOTS)

    def _convert_orm_to_iceberg(self, orm_table: TableRow) -> Table:
        return internals.table_from_row(self, orm_table, self.parsed_metadata)


# Bound of a catalog's parsed metadata, in snapshots (the part that grows with history): about
# ten tables with three years of daily snapshots, a few tens of MB of Python objects.
METADATA_CACHE_SNAPSHOTS = 10_000
