"""Dagster's SQLite event log with its connections kept open: the local instance's event storage.

Dagster's own ``SqliteEventLogStorage`` builds a new SQLAlchemy engine and opens a new SQLite connection for every
event it records, and the close of that connection checkpoints the write-ahead log. A ranged backfill records about
25 events per settlement day (a planned event and a materialisation per asset and day, a check result per check and
day), and in ``bench/bench_backfill.py`` those writes were most of the CPU of a year's run. This subclass keeps one
engine per shard (a run's database, the cross-run index) with a small connection pool, and checkpoints a run's log
passively after each write instead of on close, so the run's ``.db`` file changes after every event as before: the
webserver's watchers (which watch that file) still see each event as it lands. Commits use SQLite's
``synchronous=NORMAL``, its advice for WAL databases (a crash of the process loses nothing; a power cut may lose the
last events, never the database). Everything else (schema, files, queries, migrations) is Dagster's own; an
instance written by one reads with the other.

``dagster.yaml`` selects it::

    event_log_storage:
      module: grid_guardian_assets.defs.instance_storage
      class: PooledSqliteEventLogStorage

Without ``config`` the databases live where Dagster's default puts them, ``$DAGSTER_HOME/history/runs``. Dagster
does not tell a configured storage which folder its instance lives in, so without DAGSTER_HOME (the CLI's temporary
instance, built from ``./dagster.yaml``, which ``dagster dev`` hands to every process it starts) there is no folder
that all of them would agree on, and the storage refuses to start rather than scatter the event log. Code that opens
an instance by folder (``DagsterInstance.from_config(home)``, as the demo does) installs the settings with
``settings_for_home``, which writes the folder in.

Batches: Dagster hands a storage a batch of events (``store_event_batch``) when ``DAGSTER_EVENT_BATCH_SIZE`` is set
and the events come with batch metadata: the planned events of a run (one per asset and settlement day of a range)
and the per-day events the settlement-day steps log a day or a month at a time (``defs/event_batches.py``). This
storage writes a batch in one transaction per database (Dagster's own statements, one commit and one checkpoint
instead of one per event), and sets ``DAGSTER_EVENT_BATCH_SIZE`` to ``EVENT_BATCH_SIZE`` in the processes that load
it unless the environment says otherwise (``0`` turns batching off).
Production uses PostgreSQL (``deploy/dagster.production.yaml``) and never loads this module.

Private API: this class overrides ``SqliteEventLogStorage``'s private methods (``_connect``, ``_store_asset_event``,
``_has_asset_key_col_on_connection``) and relies on how ``store_event``/``store_event_batch`` call them. It was
checked against ``CHECKED_DAGSTER_VERSION``, which ``pyproject.toml`` pins; a test fails on any other version. On an
upgrade, compare ``dagster/_core/storage/event_log/sqlite/sqlite_event_log.py`` and ``sql_event_log.py`` of the two
versions (those methods' signatures, what ``store_event`` and ``store_event_batch`` call and in which transaction),
run ``grid_guardian_tests/test_instance_storage.py`` and ``bench/bench_backfill.py``, then move the constant.
"""

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from dagster import Field, StringSource
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetKeyTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import event
from sqlalchemy import exc as db_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Connections kept per database, and how many more may be open at once: Dagster's _connect holds the storage's lock
# while one is out, but some of Dagster's storage code opens a second one on the same engine meanwhile.
_POOL_SIZE = 1
_POOL_MAX_OVERFLOW = 4
# Run databases whose engines (one open SQLite connection each) are kept, the most recently used; Dagster's own class
# kept none. A long-lived webserver reads the logs of many runs: the others are closed, not left open.
MAX_OPEN_RUN_DATABASES = 8
# Events written per batch at most (Dagster flushes a batch at its end or at this size).
EVENT_BATCH_SIZE = 1000
SETTINGS_NOTE = "# Written by settings_for_home from the project's dagster.yaml: the comments are there.\n"


def settings_for_home(settings: str, home: Path) -> str:
    """Instance settings (``dagster.yaml``'s text) for an instance kept in ``home``: when they select this storage
    without a ``base_dir``, the folder Dagster's default would use there (``home/history/runs``) is written in, so the
    event log lands in ``home`` whatever DAGSTER_HOME says. Other settings come back unchanged (as YAML)."""
    parsed = yaml.safe_load(settings) or {}
    block = parsed.get("event_log_storage") or {}
    if block.get("module") == __name__ and block.get("class") == PooledSqliteEventLogStorage.__name__:
        config = block.get("config") or {}
        config.setdefault("base_dir", str(Path(home).resolve() / "history" / "runs"))
        block["config"] = config
    return SETTINGS_NOTE + yaml.safe_dump(parsed, sort_keys=False)


def default_event_log_dir() -> str:
    """Where Dagster's default SQLite storage keeps event logs: ``$DAGSTER_HOME/history/runs``.

    Raises:
        ValueError: DAGSTER_HOME is not set.
    """
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "PooledSqliteEventLogStorage (the project's dagster.yaml) keeps the event log in $DAGSTER_HOME/history/runs, "
            "and DAGSTER_HOME is not set: set it to the instance's folder (Dagster's temporary instance cannot tell a "
            "configured storage where its folder is), or give event_log_storage a config.base_dir"
        )
    return os.path.join(home, "history", "runs")


# The Dagster release whose private event-log methods this module was checked against (see the module docstring).
CHECKED_DAGSTER_VERSION = "1.13.27"


def _relaxed_sync(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's advice for WAL databases: synchronous=NORMAL syncs at checkpoints, not at every commit. A crash of the
    # process loses nothing; a power cut may lose the last few events, never the database.
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


_LIVE_STORAGES: "weakref.WeakSet[PooledSqliteEventLogStorage]" = weakref.WeakSet()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with pooled engines (the index's, and the most recent run databases') and a passive
    WAL checkpoint of a run's database after each use.

    Args:
        base_dir: Folder of the per-run and index databases; ``$DAGSTER_HOME/history/runs`` when not given.
        inst_data: Dagster's record of the configuration this storage was built from.
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        # While a batch is written: its thread (which holds _db_lock) and its open connection per shard.
        self._batch_thread: int | None = None
        self._batch_connections: dict[str, Connection] = {}
        # While a batch is written: per asset key, the latest asset event of each type with its id, the most recent
        # last (see _store_asset_event).
        self._batch_asset_events: dict[str, dict[str, tuple[EventLogEntry, int]]] = {}
        self._known_tables: set[str] = set()
        self._known_asset_key_columns: set[str] = set()
        super().__init__(base_dir or default_event_log_dir(), inst_data=inst_data)
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))
        _LIVE_STORAGES.add(self)

    # Dagster asks the index's schema whether a table or an asset-key column exists before each asset or check event
    # it stores (a fresh engine and connection for the table, an inspection of the columns): about a fifth of a
    # batch's time. Migrations only add tables and columns, so once present is always present: only "yes" is kept.
    def has_table(self, table_name: str) -> bool:
        """Whether the index database has ``table_name`` (a "yes" is remembered)."""
        if table_name not in self._known_tables:
            if not super().has_table(table_name):
                return False
            self._known_tables.add(table_name)
        return True

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        if column_name not in self._known_asset_key_columns:
            if not super()._has_asset_key_col_on_connection(conn, column_name):
                return False
            self._known_asset_key_columns.add(column_name)
        return True

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        """Dagster's config schema: ``base_dir`` is optional (see the class)."""
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "PooledSqliteEventLogStorage":
        """Build the storage from ``dagster.yaml``'s ``event_log_storage.config``."""
        return cls(inst_data=inst_data, **config_value)

    def _engine_for(self, shard: str) -> Engine:
        """The shard's engine, made on first use; beyond ``MAX_OPEN_RUN_DATABASES`` run databases the least recently
        used one is closed. Call with ``_db_lock`` held."""
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=_POOL_SIZE,
                max_overflow=_POOL_MAX_OVERFLOW,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(engine, "connect", _relaxed_sync)
            self._engines[shard] = engine
            runs = [s for s in self._engines if s != INDEX_SHARD_NAME]
            for oldest in runs[: max(0, len(runs) - MAX_OPEN_RUN_DATABASES)]:
                self._engines.pop(oldest).dispose()
        self._engines.move_to_end(shard)
        return engine

    def _ready_engine(self, shard: str) -> Engine:
        """The shard's engine, its schema created on first use. Call with ``_db_lock`` held."""
        engine = self._engine_for(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        if self._batch_thread == threading.get_ident():
            yield self._batch_connection(shard)
            return
        with self._db_lock:
            engine = self._ready_engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
            if shard != INDEX_SHARD_NAME:
                self._checkpoint(engine)

    @staticmethod
    def _checkpoint(engine: Engine) -> None:
        # What closing the connection did in Dagster's storage: move the log into the run's .db file, which is what a
        # run's watchers (the webserver's live run log) watch. PASSIVE never waits on readers, and after a read there
        # is nothing to move. Nobody watches the index file; SQLite checkpoints it every 1,000 pages on its own.
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            raw.close()

    def _batch_connection(self, shard: str) -> Connection:
        """The batch's connection to ``shard``, opened (with a transaction begun) on first use."""
        conn = self._batch_connections.get(shard)
        if conn is None:
            conn = self._ready_engine(shard).connect()
            conn.begin()
            self._batch_connections[shard] = conn
        return conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store ``events`` with Dagster's own ``store_event``, in one transaction per database they touch: all of
        them or, on an error, none (Dagster then stores them one by one)."""
        with self._db_lock:
            self._batch_thread = threading.get_ident()
            try:
                for entry in events:
                    self.store_event(entry)
                self._store_batch_asset_rows()
                for conn in self._batch_connections.values():
                    conn.commit()
            except BaseException:
                for conn in self._batch_connections.values():
                    conn.rollback()
                raise
            finally:
                self._batch_thread = None
                self._batch_asset_events = {}
                connections, self._batch_connections = self._batch_connections, {}
                for conn in connections.values():
                    conn.close()
            for shard in connections:
                if shard != INDEX_SHARD_NAME:
                    self._checkpoint(self._engine_for(shard))

    def _store_asset_event(self, conn: Connection, event: EventLogEntry, event_id: int) -> None:
        """Dagster's update of the asset's row in the index (its last materialisation, last run, last event time),
        deferred to the end of a batch, where each asset gets one update.

        Dagster writes the row for every asset event, and a ranged run's batch holds hundreds per asset (a planned
        event per day, then a materialisation per day), each a serialised record and an insert that fails into an
        update. Each event type sets the same columns every time, so the row a run of events leaves is the latest
        event of each type applied in order: only those are written. Outside a batch Dagster's own method runs."""
        if self._batch_thread != threading.get_ident():
            super()._store_asset_event(conn, event, event_id)
            return
        dagster_event = event.dagster_event
        if dagster_event is None or dagster_event.asset_key is None:
            return
        latest = self._batch_asset_events.setdefault(dagster_event.asset_key.to_string(), {})
        latest.pop(dagster_event.event_type_value, None)  # re-inserted: the dict's order is the order to apply
        latest[dagster_event.event_type_value] = (event, event_id)

    def _store_batch_asset_rows(self) -> None:
        """Write the index rows deferred by ``_store_asset_event`` (one insert or update per asset, as Dagster's)."""
        if not self._batch_asset_events:
            return
        conn = self._batch_connection(INDEX_SHARD_NAME)
        has_index_cols = self._has_asset_key_index_cols_on_connection(conn)
        for asset_key, latest in self._batch_asset_events.items():
            values: dict[str, Any] = {}
            for entry, event_id in latest.values():
                values.update(self._get_asset_entry_values(entry, event_id, has_index_cols))
            if not values:
                continue
            try:  # as Dagster's: in SQLite a failed statement leaves the transaction open
                conn.execute(AssetKeyTable.insert().values(asset_key=asset_key, **values))
            except db_exc.IntegrityError:
                conn.execute(AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == asset_key))

    def wipe(self) -> None:
        """Dagster's wipe deletes the run databases' files: close their connections first."""
        with self._db_lock:
            for shard in [s for s in self._engines if s != INDEX_SHARD_NAME]:
                self._engines.pop(shard).dispose()
        super().wipe()

    def dispose(self) -> None:
        """Stop Dagster's watchers (which read through these engines), then close every pooled connection."""
        super().dispose()
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def _forget_inherited_connections(self) -> None:
        # A forked child must not use (or close) the parent's SQLite handles: SQLAlchemy's advice after fork. The
        # lock may have been held by another of the parent's threads at the fork: the child gets a new one.
        self._db_lock = threading.Lock()
        for engine in self._engines.values():
            engine.dispose(close=False)
        self._engines.clear()


def _after_fork_in_child() -> None:
    for storage in list(_LIVE_STORAGES):
        storage._forget_inherited_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)
