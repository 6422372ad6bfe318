"""Engines from a URL, one transaction per call, and the schema check of a results database.

SQLite (the default: ``sqlite:///<out>/immunopet.db``)
------------------------------------------------------
* **Rollback journal, not WAL.** A new database keeps SQLite's default rollback journal
  (``journal_mode=DELETE``; an existing database keeps the mode it has). Both modes survive a
  killed process: with a rollback journal the original pages sit in ``immunopet.db-journal``
  until the commit, and the next connection that finds this "hot" journal rolls it back; in
  WAL mode uncommitted frames are simply ignored. The rollback journal is chosen because after
  every commit the database is **one file**: it can be copied with the rest of ``--out``
  (:func:`~immunopet.store.atomic_output_folder` copies it into each new output folder),
  archived or mailed, whereas WAL keeps committed pages in ``-wal``/``-shm`` side files until a
  checkpoint, and needs shared memory that network file systems (hospital shares) do not
  provide. The price, readers waiting during a commit, does not matter for one writer per run.
  Never delete a ``-journal`` file left beside a database by a killed run: it is what restores
  the previous state.
* ``PRAGMA synchronous=FULL`` (the journal is synced before the database is changed, so a
  power cut also leaves the last committed state) and ``PRAGMA foreign_keys=ON``.
* **Transactions are real.** Python's ``sqlite3`` (before 3.12) would autocommit DDL and start
  transactions only at the first write; here the driver's own transaction control is switched
  off and every transaction starts with ``BEGIN`` (reading) or ``BEGIN IMMEDIATE`` (saving, the
  write lock taken at once), as the SQLAlchemy SQLite dialect documentation recommends. So
  creating the tables, the ``meta`` rows and the results commit together or not at all.
* Another writer holding the lock is waited for up to ``lock_timeout_s``; then the save fails
  with an :class:`~immunopet.errors.InputError` naming ``--db``.

Other databases (e.g. ``postgresql+psycopg://user@host/db``) get the same single transaction;
their driver must be installed.

Older schemas
-------------
A database of an older schema version (``meta.schema_version``) is read as it is: the columns
that later versions added (:data:`~immunopet.store._models.ADDED_COLUMNS`) are left out of the
queries (their values sit in the rows' ``extra``), and the file is not changed. The next save
upgrades it in the same transaction as the results: it adds the columns, moves their values
out of ``extra`` and records the new version, so a killed save leaves the old schema intact.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, bindparam, create_engine, event, inspect, select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from immunopet.errors import InputError
from immunopet.store._models import ADDED_COLUMNS, SCHEMA_VERSION, Base, MetaRow

__all__ = [
    "ABSENT_COLUMNS",
    "DB_FIELD",
    "DEFAULT_DB_NAME",
    "DEFAULT_LOCK_TIMEOUT_S",
    "default_url",
    "open_session",
    "shown_url",
]

DB_FIELD = "--db"
"""The command-line option every database error names."""

DEFAULT_DB_NAME = "immunopet.db"
"""File name of the default SQLite database inside the output folder."""

DEFAULT_LOCK_TIMEOUT_S = 60.0
"""How long a save waits for another process holding the SQLite write lock (s)."""

_APPLICATION = "immunopet"
_URL_HINT = (
    "give a SQLAlchemy URL such as sqlite:///results.db or postgresql+psycopg://user@host/db"
)


def default_url(out_dir: str | os.PathLike[str]) -> str:
    """Return the URL of the default results database in ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder (``--out``); made absolute, so the URL does not depend on the
        working directory.

    Returns
    -------
    str
        ``sqlite:///<absolute out_dir>/immunopet.db`` (characters special in URLs escaped).

    Examples
    --------
    >>> default_url("/data/run1")
    'sqlite:////data/run1/immunopet.db'

    """
    path = Path(os.path.abspath(out_dir)) / DEFAULT_DB_NAME
    return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise InputError(f"{url!r} is not a database URL", field=DB_FIELD, hint=_URL_HINT) from exc


def shown_url(url: str) -> str:
    """Return ``url`` as it may be printed (password hidden)."""
    return _parse(url).render_as_string(hide_password=True)


def _sqlite_path_checks(parsed: URL, shown: str, *, write: bool) -> None:
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        raise InputError(
            f"{shown} is an in-memory database: results would vanish when the run ends",
            field=DB_FIELD,
            hint="give a file, e.g. sqlite:///results.db",
        )
    if parsed.query.get("uri"):  # an SQLite "file:" URI: the driver resolves it
        return
    path = Path(database)
    if write and not path.parent.absolute().is_dir():
        raise InputError(
            f"the folder of the database {shown} does not exist",
            field=DB_FIELD,
            hint=f"create {path.parent} first or choose another --db",
        )
    if not write and not path.is_file():
        raise InputError(
            f"there is no database at {shown}",
            field=DB_FIELD,
            hint="check --db (relative paths start from the working directory)",
        )


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Leave BEGIN to us (see the module notes); enforce foreign keys; sync the journal.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _engine(url: str, *, write: bool, lock_timeout_s: float) -> tuple[Engine, str]:
    parsed = _parse(url)
    shown = parsed.render_as_string(hide_password=True)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        _sqlite_path_checks(parsed, shown, write=write)
    try:
        # NullPool: no connection (no open file) outlives the call, so the output folder
        # holding the database can be renamed right after a save.
        engine = create_engine(
            parsed,
            poolclass=NullPool,
            connect_args={"timeout": lock_timeout_s} if sqlite else {},
        )
    except ImportError as exc:
        raise InputError(
            f"the database driver for {shown} is not installed ({exc})",
            field=DB_FIELD,
            hint="install it, e.g. pip install psycopg for postgresql+psycopg://",
        ) from exc
    except SQLAlchemyError as exc:
        raise InputError(
            f"cannot use the database {shown}: {exc}", field=DB_FIELD, hint=_URL_HINT
        ) from exc
    if sqlite:
        begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql(begin))
    return engine, shown


def _database_error(exc: Exception, shown: str) -> InputError:
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if "locked" in detail.lower() or "busy" in detail.lower():
        return InputError(
            f"the database {shown} is locked by another process ({detail})",
            field=DB_FIELD,
            hint="another immunopet run is probably saving to it: wait for it and re-run, "
            "or pass another --db",
        )
    return InputError(
        f"cannot save to or read from the database {shown}: {detail}",
        field=DB_FIELD,
        hint="check that --db names an immunopet results database you may write to",
    )


ABSENT_COLUMNS = "immunopet_absent_columns"
"""``Session.info`` key: the columns, by table, that an older schema's database lacks."""


def _mismatch(shown: str, what: str) -> InputError:
    return InputError(
        f"the database {shown} {what}",
        field=DB_FIELD,
        hint="pass a new file or an immunopet results database with --db",
    )


def _check_schema(session: Session, shown: str, *, create: bool) -> None:
    """Create the tables in an empty database, or check those of an existing one."""
    connection = session.connection()
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    ours = set(Base.metadata.tables)
    if MetaRow.__tablename__ not in present:
        if present & ours:
            raise _mismatch(
                shown,
                f"has tables named like immunopet's ({', '.join(sorted(present & ours))}) but "
                "no immunopet 'meta' table: it is not an immunopet results database",
            )
        if not create:
            raise InputError(
                f"the database {shown} holds no immunopet results",
                field=DB_FIELD,
                hint="run immunopet analyze with this --db first",
            )
        Base.metadata.create_all(connection)
        session.add_all(
            [
                MetaRow(key="application", value=_APPLICATION),
                MetaRow(key="schema_version", value=str(SCHEMA_VERSION)),
            ]
        )
        session.flush()
        return
    meta_columns = {column["name"] for column in inspector.get_columns(MetaRow.__tablename__)}
    if not {"key", "value"} <= meta_columns:
        raise _mismatch(shown, "has a 'meta' table that is not immunopet's")
    meta = dict(session.execute(select(MetaRow.key, MetaRow.value)).all())
    if meta.get("application") != _APPLICATION:
        raise _mismatch(shown, "has a 'meta' table that is not immunopet's")
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise _mismatch(
            shown, f"states an unreadable schema_version {meta.get('schema_version')!r}"
        ) from None
    if version > SCHEMA_VERSION:
        raise InputError(
            f"the database {shown} has results schema {version}, newer than the schema "
            f"{SCHEMA_VERSION} this immunopet writes and reads",
            field=DB_FIELD,
            hint="upgrade immunopet, or pass another --db",
        )
    if version < 1:
        raise _mismatch(shown, f"states an unknown schema_version {version}")
    # Columns of later versions than the database's: absent by design, added by an upgrade.
    later: dict[str, set[str]] = {}
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for name, added in ADDED_COLUMNS.get(step, {}).items():
            later.setdefault(name, set()).update(added)
    for name, table in Base.metadata.tables.items():
        if name not in present:
            raise _mismatch(shown, f"lacks the table {name!r} of results schema {version}")
        columns = {column["name"] for column in inspector.get_columns(name)}
        missing = sorted(set(table.columns.keys()) - columns - later.get(name, set()))
        if missing:
            raise _mismatch(
                shown,
                f"lacks the columns {', '.join(missing)} of table {name!r} (schema {version})",
            )
        later[name] = later.get(name, set()) - columns
    absent = {name: frozenset(names) for name, names in later.items() if names}
    if version < SCHEMA_VERSION and create:
        _upgrade(session, absent)
    elif absent:
        session.info[ABSENT_COLUMNS] = absent


def _upgrade(session: Session, absent: dict[str, frozenset[str]]) -> None:
    """Add the ``absent`` columns, move their values out of ``extra``, record the version.

    A row whose ``extra`` lacks one of the keys did not have it: the key joins the row's
    ``absent_keys``, so it still reads back absent rather than ``null``.
    """
    connection = session.connection()
    quote = connection.dialect.identifier_preparer.quote
    for name, added in sorted(absent.items()):
        table: Table = Base.metadata.tables[name]
        names = [column.name for column in table.columns if column.name in added]
        for column in names:
            kind = table.columns[column].type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(name)} ADD COLUMN {quote(column)} {kind}"
            )
        moved = []
        for row_id, extra, absent_keys in connection.execute(
            select(table.c.id, table.c.extra, table.c.absent_keys)
        ):
            extra = dict(extra or {})
            absent_keys = list(absent_keys or [])
            values = {}
            for column in names:
                if column in extra:
                    values[f"new_{column}"] = extra.pop(column)
                else:
                    values[f"new_{column}"] = None
                    absent_keys.append(column)
            values["new_extra"] = extra or None
            values["new_absent_keys"] = absent_keys or None
            moved.append({"row_id": row_id, **values})
        if moved:
            targets = [*names, "extra", "absent_keys"]
            connection.execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values({column: bindparam(f"new_{column}") for column in targets}),
                moved,
            )
    session.execute(
        update(MetaRow).where(MetaRow.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )


@contextmanager
def open_session(
    url: str, *, write: bool, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> Iterator[tuple[Session, str]]:
    """Open one transaction on the results database at ``url``; commit when the block succeeds.

    Parameters
    ----------
    url : str
        SQLAlchemy database URL.
    write : bool
        Saving: create the file and tables when missing and take the write lock at once.
        Reading: the database must exist and hold immunopet results.
    lock_timeout_s : float
        SQLite only: how long to wait for another writer's lock (s).

    Yields
    ------
    tuple of (Session, str)
        The session, inside its transaction (schema checked), and the URL to print.

    Raises
    ------
    InputError
        Bad URL, missing driver or file, locked or foreign database, newer schema; any error of
        the database itself (field ``--db``). The transaction is rolled back.

    """
    engine, shown = _engine(url, write=write, lock_timeout_s=lock_timeout_s)
    try:
        with Session(engine) as session, session.begin():
            _check_schema(session, shown, create=write)
            yield session, shown
    except (SQLAlchemyError, sqlite3.Error) as exc:
        raise _database_error(exc, shown) from exc
    finally:
        engine.dispose()
