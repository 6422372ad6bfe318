"""Results database and all-or-nothing output folders for ``immunopet analyze``.

The results document of a study (``results.json``) is saved to a database in one transaction
(:func:`save_results`): SQLite by default (:func:`default_url`: ``<out>/immunopet.db``), any
SQLAlchemy URL via ``--db``. Saving a study again replaces its rows (natural key
``study_key``), so re-running updates and never duplicates; a failed or killed save leaves the
database as it was. :func:`load_results` reads a study back in the same shape. Only the
pipeline computes; this package stores what it is given.

A run's files are written with :func:`atomic_output_folder`, which swaps the finished folder
into ``--out`` at the end, keeping the previous output until then. Used together, a killed run
leaves both ``--out`` and the database as they were::

    with atomic_output_folder(out_dir, keep=[DEFAULT_DB_NAME]) as folder:
        ...  # write results.json, tables, report into folder
        save_results(results, db_url or default_url(folder))  # last step before the swap

With the default database, the database file is part of the folder that is swapped in, so the
outputs and the database change together. With an external ``--db`` the commit comes just before
the swap; a run killed in between has saved its results but not its files, and re-running it
repairs that (saving is idempotent).
"""

from immunopet.store._engine import DEFAULT_DB_NAME, default_url
from immunopet.store._models import SCHEMA_VERSION
from immunopet.store._outputs import OUTPUT_MARKER, atomic_output_folder
from immunopet.store._save import RESULTS_SCHEMA_MAJOR, SaveSummary, load_results, save_results

__all__ = [
    "DEFAULT_DB_NAME",
    "OUTPUT_MARKER",
    "RESULTS_SCHEMA_MAJOR",
    "SCHEMA_VERSION",
    "SaveSummary",
    "atomic_output_folder",
    "default_url",
    "load_results",
    "save_results",
]
