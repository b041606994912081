"""Every private pyiceberg API the platform uses, in one place, each with the reason it has to.

pyiceberg is the storage engine of the lakehouse, and a few things the platform must guarantee
(files staged before the commit, a write whose cost follows the work and not the table's
history) have no public API in pyiceberg 0.12. Reaching into its internals anywhere else is
forbidden: keeping them here means one module to review when pyiceberg moves, and
``tests/lakehouse/test_pyiceberg_internals.py`` fails as soon as any of them changes shape
(its :data:`PINNED` fingerprints), so an upgrade cannot silently change what we rely on.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

# _dataframe_to_data_files: pyiceberg's only way to turn Arrow into Iceberg data files laid out
# by the table's partition spec and properties *without committing them*. The public writers
# (Table/Transaction.append, overwrite, dynamic_partition_overwrite) write and commit in one
# call, so we could neither track each staged file (to delete it when the commit certainly
# failed) nor write a stream chunk by chunk with bounded memory.
from pyiceberg.io.pyarrow import _dataframe_to_data_files

# _apply_table_update / _TableMetadataUpdateContext: the per-update step of the public
# update_table_metadata(). That function ends with a deep copy of the whole metadata (every
# snapshot and log entry), and Transaction.table_metadata calls it on every read, so a write's
# cost grows with the table's history (apache/iceberg-python#2673, #3301). Replaying the staged
# updates ourselves, without that copy, is the only way to read a transaction's view in time
# independent of history; the upstream fix (#3302, #3784) is not in a release.
from pyiceberg.table.update import (
    _apply_table_update,
    _TableMetadataUpdateContext,
    _update_table_metadata_log,
    update_table_metadata,
)
from pyiceberg.utils.datetime import datetime_to_millis

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.catalog.sql import IcebergTables as TableRow
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.io import FileIO, InputFile
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import CommitTableResponse, Table, Transaction
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.snapshots import Snapshot
    from pyiceberg.table.update import TableRequirement, TableUpdate
    from sqlalchemy import CursorResult


def dataframe_to_data_files(
    metadata: TableMetadata,
    data: pa.Table,
    io: FileIO,
    write_uuid: uuid.UUID,
    counter: itertools.count[int] | None = None,
) -> Iterable[DataFile]:
    """Write ``data`` as data files of the table described by ``metadata``, committing nothing."""
    return _dataframe_to_data_files(metadata, data, io, write_uuid, counter)


def transaction_state(tx: Transaction) -> tuple[TableMetadata, tuple[TableUpdate, ...]]:
    """The committed metadata a transaction started from and the updates it has staged so far.

    ``Transaction._table`` and ``Transaction._updates`` are private attributes; pyiceberg
    exposes only their combination (``table_metadata``), which is the expensive read we avoid.
    """
    return tx._table.metadata, tx._updates


def replay_updates(
    base: TableMetadata, updates: tuple[TableUpdate, ...], metadata_location: str | None = None
) -> TableMetadata:
    """``update_table_metadata(base, updates)`` without its final deep copy of the whole metadata.

    Every step of pyiceberg's replay builds new metadata with ``model_copy(update=...)`` and
    fresh containers; it never mutates ``base``. The deep copy only guards against callers that
    would mutate the result, and the models are frozen, so sharing the unchanged snapshots with
    ``base`` is safe. The result equals pyiceberg's (checked by the tests on the same operations).
    """
    context = _TableMetadataUpdateContext()
    metadata = base
    for update in updates:
        metadata = _apply_table_update(update, metadata, context)
    if context.has_changes():
        if metadata_location:
            metadata = _update_table_metadata_log(metadata, metadata_location, base.last_updated_ms)
        if base.last_updated_ms == metadata.last_updated_ms:
            from datetime import datetime

            metadata = metadata.model_copy(
                update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())}
            )
    metadata.spec().check_compatible(metadata.schema())
    metadata.sort_order().check_compatible(metadata.schema())
    return metadata


def sql_commit(
    catalog: Catalog,
    table: Table,
    requirements: tuple[TableRequirement, ...],
    updates: tuple[TableUpdate, ...],
    parsed: ParsedMetadata | None = None,
) -> CommitTableResponse:
    """``SqlCatalog.commit_table`` built on the transaction's own base, when that base is current.

    SqlCatalog re-reads and re-parses the table's metadata file, replays the updates onto it
    with a deep copy of every snapshot, then swaps the catalog row only if its metadata location
    is still the one it read. The first three steps cost in proportion to the table's history.
    Here the base is the metadata the transaction was built on (pyiceberg refreshes it before a
    retry), the replay shares the unchanged snapshots, and the same compare-and-swap on the
    row's metadata location decides: if another writer committed since the base was read, no
    row matches, the new file is deleted and the commit is handed to SqlCatalog itself, which
    judges the requirements against the catalog's current state exactly as without this path.
    Any other catalog, or a database without reliable row counts, goes to ``commit_table``.

    With ``parsed`` (the catalog's), the new file reuses the text of the snapshots the base's
    file already holds (:func:`write_metadata`), and the committed metadata is kept there.
    """
    from pyiceberg.catalog import Catalog as BaseCatalog
    from pyiceberg.catalog.sql import IcebergTables as TableRows
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table import CommitTableResponse
    from pyiceberg.table.locations import load_location_provider
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    base, base_location = table.metadata, table.metadata_location
    if (
        not isinstance(catalog, SqlCatalog)
        or not catalog.engine.dialect.supports_sane_rowcount
        or not base_location
    ):
        return catalog.commit_table(table, requirements, updates)
    try:
        for requirement in requirements:
            requirement.validate(base)
    except CommitFailedException:
        return catalog.commit_table(table, requirements, updates)
    metadata = replay_updates(base, updates, metadata_location=base_location)
    if metadata == base:
        return catalog.commit_table(table, requirements, updates)
    version = catalog._parse_metadata_version(base_location) + 1
    location = load_location_provider(
        metadata.location, metadata.properties
    ).new_table_metadata_file_location(version)
    io = catalog._load_file_io(properties=metadata.properties, location=location)
    snapshots_json = write_metadata(
        catalog, metadata, io, location, parsed.snapshots_json(base_location) if parsed else None
    )
    identifier = table.name()
    namespace = BaseCatalog.namespace_to_string(BaseCatalog.namespace_from(identifier))
    name = BaseCatalog.table_name_from(identifier)
    with Session(catalog.engine) as session:
        swapped = session.execute(
            update(TableRows)
            .where(
                TableRows.catalog_name == catalog.name,
                TableRows.table_namespace == namespace,
                TableRows.table_name == name,
                TableRows.metadata_location == base_location,
            )
            .values(metadata_location=location, previous_metadata_location=base_location)
        )
        # an UPDATE's result is a CursorResult, whose rowcount is the compare-and-swap's verdict
        if cast("CursorResult[Any]", swapped).rowcount < 1:
            session.rollback()
            # left behind, the file is unreferenced: orphan-file cleanup would remove it
            with contextlib.suppress(Exception):
                io.delete(location)
            return catalog.commit_table(table, requirements, updates)
        session.commit()
    if parsed is not None:
        parsed.put(location, metadata, snapshots_json)
    return CommitTableResponse.model_validate({"metadata": metadata, "metadata-location": location})


class ParsedMetadata:
    """Parsed table metadata by metadata file location, least recently used first out.

    An Iceberg metadata file is never rewritten: each commit writes a new one under a new name
    (version and UUID), and a table's catalog row points at exactly one. So the parsed
    ``TableMetadata`` of a location is valid for as long as anyone asks, and the frozen models
    are shared safely (pyiceberg rebinds a table's metadata, never mutates it). Bounded by the
    summed snapshot count, the part of a metadata file that grows with history. Each entry
    also keeps the text of its file's snapshot array when known, for the next commit to reuse.

    One per catalog, never shared: a catalog reads with its own principal's keys, and a metadata
    file another principal could read must still be refused to this one by the object store.
    """

    def __init__(self, max_snapshots: int) -> None:
        self.max_snapshots = max_snapshots
        self._entries: OrderedDict[str, tuple[TableMetadata, int, str | None]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, location: str) -> TableMetadata | None:
        with self._lock:
            entry = self._entries.get(location)
            if entry is None:
                return None
            self._entries.move_to_end(location)
            return entry[0]

    def snapshots_json(self, location: str) -> tuple[Sequence[Snapshot], str] | None:
        """The snapshots parsed from ``location`` and their text in that file, if both are held."""
        with self._lock:
            entry = self._entries.get(location)
        if entry is None or entry[2] is None:
            return None
        return entry[0].snapshots, entry[2]

    def put(self, location: str, metadata: TableMetadata, snapshots_json: str | None = None) -> None:
        weight = len(metadata.snapshots) + 1
        if weight > self.max_snapshots:
            return
        with self._lock:
            if location in self._entries:
                self._entries.move_to_end(location)
                return
            self._entries[location] = (metadata, weight, snapshots_json)
            self._weight += weight
            while self._weight > self.max_snapshots:
                _, (_, dropped, _) = self._entries.popitem(last=False)
                self._weight -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)


# The value of a metadata file's "snapshots" key. An unescaped quote cannot occur inside a JSON
# string, and the objects whose keys are free text (properties, summaries, refs) hold strings or
# objects, never an array, so this matches a key whose value is an array; parse_metadata checks
# that it was the top-level one before trusting it.
_SNAPSHOTS_KEY = re.compile(r'"snapshots"\s*:\s*(?=\[)')
_DECODER = json.JSONDecoder()


def read_metadata(input_file: InputFile) -> tuple[TableMetadata, str | None]:
    """``FromInputFile.table_metadata``, and the text of the file's snapshot array (see below)."""
    from pyiceberg.serializers import Compressor

    compression = Compressor.get_compressor(location=input_file.location)
    with input_file.open() as stream, compression.stream_decompressor(stream) as plain:
        text = plain.read().decode("utf-8")
    with _collector_paused():
        return parse_metadata(text)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a burst of acyclic objects is built.

    A metadata file's parse builds a few objects per snapshot, all acyclic (pydantic models of
    strings and numbers) and all kept. Left on, the collector runs every 700 allocations and
    walks them again and again, and in a process holding Dagster's definitions the passes it
    triggers cost as much as the parse (profiled: 300 collections in 12 first writes at 1,000
    snapshots, against 60 at one). Restored afterwards only if it was on.
    """
    import gc

    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def parse_metadata(text: str) -> tuple[TableMetadata, str | None]:
    """``TableMetadataUtil.parse_raw(text)``, and the text of its snapshot array when v2.

    The array is decoded on its own (``raw_decode`` tells where it ends) and the rest of the
    document without it, so the text comes at no extra parse. Anything unexpected (no such key,
    not the top-level one, not format v2, invalid) is parsed by pyiceberg alone, with its errors.
    """
    from pydantic import ValidationError as PydanticValidationError
    from pyiceberg.table.metadata import TableMetadataUtil

    found = _SNAPSHOTS_KEY.search(text)
    if found is not None:
        start = found.end()
        try:
            snapshots, end = _DECODER.raw_decode(text, start)
            rest = json.loads(f"{text[:start]}[]{text[end:]}")
            if isinstance(rest, dict) and rest.get("snapshots") == [] and rest.get("format-version") == 2:
                rest["snapshots"] = snapshots
                return TableMetadataUtil.parse_obj(rest), text[start:end]
        except (ValueError, PydanticValidationError):
            pass  # pyiceberg's parse below raises its own error for it
    return TableMetadataUtil.parse_raw(text), None


def serialize_metadata(
    metadata: TableMetadata, known: tuple[Sequence[Snapshot], str] | None
) -> tuple[str, str] | None:
    """The JSON pyiceberg writes for ``metadata``, and the text of its snapshot array.

    pyiceberg serializes every snapshot of the history at every commit (``model_dump_json``:
    after parsing, the largest part of a commit's cost that follows history). Snapshots are
    frozen, so when ``metadata`` starts with the very objects of ``known`` (the base file's
    snapshots and their text), their text is reused and only the new ones are serialized. The
    array goes last in the object; key order is not part of JSON's meaning. ``None`` where
    pyiceberg must write itself: format v1 (its snapshots drop a field) and v3 (not written by
    0.12), or the legacy ``current-snapshot-id`` setting (it also writes nulls).
    """
    from pyiceberg.utils.config import Config

    if metadata.format_version != 2 or Config().get_bool("legacy-current-snapshot-id"):
        return None
    snapshots = metadata.snapshots
    array = None
    if known is not None:
        old, text = known
        if len(snapshots) >= len(old) and all(a is b for a, b in zip(snapshots, old, strict=False)):
            added = [snapshot.model_dump_json() for snapshot in snapshots[len(old) :]]
            if not added:
                array = text
            else:
                opened = text.rstrip()[:-1].rstrip()  # the array without its closing bracket
                array = f"{opened}{',' if old else ''}{','.join(added)}]"
    if array is None:
        array = f"[{','.join(snapshot.model_dump_json() for snapshot in snapshots)}]"
    head = metadata.model_dump_json(exclude={"snapshots"})
    return f'{head[:-1]},"snapshots":{array}}}', array


def write_metadata(
    catalog: SqlCatalog,
    metadata: TableMetadata,
    io: FileIO,
    location: str,
    known: tuple[Sequence[Snapshot], str] | None,
) -> str | None:
    """``Catalog._write_metadata`` (``ToOutputFile.table_metadata``) by :func:`serialize_metadata`.

    Returns the written snapshot array's text, for the next commit to build on.
    """
    from pyiceberg.serializers import Compressor

    serialized = serialize_metadata(metadata, known)
    if serialized is None:
        catalog._write_metadata(metadata=metadata, io=io, metadata_path=location)
        return None
    document, array = serialized
    output = io.new_output(location)
    compress = Compressor.get_compressor(output.location).bytes_compressor()
    with output.create(overwrite=False) as stream:
        stream.write(compress(document.encode("utf-8")))
    return array


def table_from_row(catalog: SqlCatalog, row: TableRow, parsed: ParsedMetadata) -> Table:
    """``SqlCatalog._convert_orm_to_iceberg``, parsing each metadata file once per process.

    pyiceberg parses the whole metadata file, every snapshot of the table's history, on every
    ``load_table`` and ``refresh``; a governed write loads its table about five times (write,
    branch, checks, publish, properties) and parsing is most of a write's cost on a long history
    (1,000 daily snapshots: ~25 ms a parse). The file at a location never changes, so its parse
    is kept (``parsed``, the catalog's), with the text of its snapshot array for the next
    commit; the commits made here add theirs (``sql_commit``). A process's first load of a
    table version still parses it.
    """
    from pyiceberg.catalog import Catalog as BaseCatalog
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.io import load_file_io
    from pyiceberg.table import Table

    location, namespace, name = row.metadata_location, row.table_namespace, row.table_name
    if not (location and namespace and name):  # pyiceberg's own raises the error it names
        return SqlCatalog._convert_orm_to_iceberg(catalog, row)
    identifier = (*BaseCatalog.identifier_to_tuple(namespace), name)
    metadata = parsed.get(location)
    if metadata is not None:
        io = catalog._load_file_io(metadata.properties, location)
        # A stat (a HEAD on S3), not a read: a file deleted since (a warehouse reset or restored
        # apart from its catalog) fails the load as without the cache, with the same error.
        if io.new_input(location).exists():
            return Table(
                identifier=identifier, metadata=metadata, metadata_location=location, io=io, catalog=catalog
            )
    # as pyiceberg's: the file read with the catalog's properties, the table's io from its own
    metadata, snapshots_json = read_metadata(
        load_file_io(properties=catalog.properties, location=location).new_input(location)
    )
    parsed.put(location, metadata, snapshots_json)
    return Table(
        identifier=identifier,
        metadata=metadata,
        metadata_location=location,
        io=catalog._load_file_io(metadata.properties, location),
        catalog=catalog,
    )


def commit_response(table: Table, response: CommitTableResponse) -> None:
    """What ``Table._do_commit`` does after the catalog answered (uuid check, old metadata, new state)."""
    import warnings

    table._check_uuid(table.metadata, response.metadata)
    try:
        table.catalog._delete_old_metadata(table.io, table.metadata, response.metadata)
    except Exception as exc:
        warnings.warn(f"Failed to delete old metadata after commit: {exc}", stacklevel=2)
    table.metadata = response.metadata
    table.metadata_location = response.metadata_location


def table_identifier(table: Table) -> tuple[str, ...]:
    """``Table._identifier`` (``name()`` returns the same tuple; the constructor needs it)."""
    return table.name()


def _fingerprint(obj: object) -> str:
    if isinstance(obj, tuple):  # several functions reviewed as one
        return hashlib.sha256("".join(_fingerprint(o) for o in obj).encode()).hexdigest()[:16]
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def _transaction(attribute: str) -> Callable[[], object]:
    def get() -> object:
        from pyiceberg.table import Transaction

        member = inspect.getattr_static(Transaction, attribute)
        return member.fget if isinstance(member, property) else member

    return get


def _member(path: str) -> object:
    """The function at ``"module:Class.attribute"``, as defined (static and class methods unwrapped)."""
    import importlib

    module, _, dotted = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in dotted.split("."):
        obj = inspect.getattr_static(obj, part)
    return obj.__func__ if isinstance(obj, staticmethod | classmethod) else obj


def _members(*paths: str) -> Callable[[], tuple[object, ...]]:
    """Several members reviewed as one (resolved when fingerprinted)."""
    return lambda: tuple(_member(path) for path in paths)


def _update_steps() -> tuple[object, ...]:
    """Every registered step of ``_apply_table_update`` (one per TableUpdate type), in a stable order."""
    registry = _apply_table_update.registry
    return tuple(registry[t] for t in sorted(registry, key=lambda t: f"{t.__module__}.{t.__qualname__}"))


# The source of every internal above as reviewed against pyiceberg 0.12.0. A changed fingerprint
# means pyiceberg moved: re-read the new code, adapt this module, then update the value.
PINNED: dict[str, tuple[Callable[[], object], str]] = {
    "pyiceberg.io.pyarrow._dataframe_to_data_files": (lambda: _dataframe_to_data_files, "244100a6322dc372"),
    "pyiceberg.table.update.update_table_metadata": (lambda: update_table_metadata, "cdfaa6553c2f4d68"),
    "pyiceberg.table.update._TableMetadataUpdateContext": (
        lambda: _TableMetadataUpdateContext,
        "3fbfad3fa0b2d16a",
    ),
    "pyiceberg.table.update._apply_table_update (every step)": (_update_steps, "f2adab0b7d316902"),
    # MeshTransaction keys its view on the identity of _table.metadata and _updates: it relies on
    # these rebinding (never mutating) both, as __init__, _stage, commit_transaction and the retry
    # path (_rebuild_snapshot_updates, after Table.refresh) do in 0.12.0.
    "pyiceberg.table.Transaction.table_metadata": (_transaction("table_metadata"), "b17e042b477c6adb"),
    "pyiceberg.table.Transaction.__init__": (_transaction("__init__"), "19002cf5755316db"),
    "pyiceberg.table.Transaction._stage": (_transaction("_stage"), "6881b41fb183aa8d"),
    "pyiceberg.table.Transaction.commit_transaction": (
        _transaction("commit_transaction"),
        "31e91e28f2729338",
    ),
    # sql_commit and commit_response reproduce these, minus the reload and the deep copy.
    "pyiceberg.catalog.sql.SqlCatalog.commit_table": (
        lambda: _member("pyiceberg.catalog.sql:SqlCatalog.commit_table"),
        "fb22ea690ba68b07",
    ),
    "pyiceberg.catalog.MetastoreCatalog._update_and_stage_table": (
        lambda: _member("pyiceberg.catalog:MetastoreCatalog._update_and_stage_table"),
        "2a491d0056395468",
    ),
    "pyiceberg.table.update._update_table_metadata_log": (
        lambda: _update_table_metadata_log,
        "1e055143f050efa3",
    ),
    # table_from_row returns what this returns, from the parsed metadata of the row's location
    "pyiceberg.catalog.sql.SqlCatalog._convert_orm_to_iceberg": (
        lambda: _member("pyiceberg.catalog.sql:SqlCatalog._convert_orm_to_iceberg"),
        "f444ea8e12456c62",
    ),
    # read_metadata / parse_metadata read a file as these do; serialize_metadata and
    # write_metadata write what these write (a v2 table's snapshots unchanged, nulls excluded).
    "pyiceberg.serializers (metadata read and write)": (
        _members(
            "pyiceberg.serializers:FromInputFile.table_metadata",
            "pyiceberg.serializers:FromByteStream.table_metadata",
            "pyiceberg.serializers:ToOutputFile.table_metadata",
            "pyiceberg.catalog:MetastoreCatalog._write_metadata",
        ),
        "816daff5125f3ca8",
    ),
    "pyiceberg.table.metadata (parse and serialize)": (
        _members(
            "pyiceberg.table.metadata:TableMetadataUtil.parse_raw",
            "pyiceberg.table.metadata:TableMetadataUtil.parse_obj",
            "pyiceberg.table.metadata:TableMetadataCommonFields.serialize_snapshots",
            "pyiceberg.table.metadata:TableMetadataCommonFields.serialize_current_snapshot_id",
            "pyiceberg.typedef:IcebergBaseModel.model_dump_json",
        ),
        "76db8befcc23d9b5",
    ),
    "pyiceberg.table.Table._do_commit": (
        lambda: _member("pyiceberg.table:Table._do_commit"),
        "794b91fe1dcf7b5f",
    ),
    "pyiceberg.table.Transaction._rebuild_snapshot_updates": (
        _transaction("_rebuild_snapshot_updates"),
        "772a9824c3918fb1",
    ),
}


def drifted() -> dict[str, str]:
    """Internals whose source differs from the reviewed one: ``{name: new fingerprint}``."""
    return {name: now for name, (get, pinned) in PINNED.items() if (now := _fingerprint(get())) != pinned}
