"""The results database: exact round trips, re-runs that replace, and killed saves.

Ground truth here is the document that was saved: a save followed by a load must give it back
bit for bit, and a save that is killed inside its transaction must leave the previous state
(checked row by row and with SQLite's own ``PRAGMA integrity_check``).
"""

from __future__ import annotations

import copy
import json
import math
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from immunopet.errors import InputError
from immunopet.store import (
    DEFAULT_DB_NAME,
    SCHEMA_VERSION,
    atomic_output_folder,
    default_url,
    load_results,
    save_results,
)
from immunopet.store._models import ADDED_COLUMNS

Factory = Callable[..., dict[str, Any]]
DATA_TABLES = (
    "studies",
    "timepoints",
    "scans",
    "lesions",
    "lesion_observations",
    "measurements",
    "events",
)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _counts(db: Path) -> dict[str, int]:
    connection = sqlite3.connect(db)
    try:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (*DATA_TABLES, "runs")
        }
    finally:
        connection.close()


def _pragma(db: Path, pragma: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(f"PRAGMA {pragma}").fetchall()
    finally:
        connection.close()


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


# ------------------------------------------------------------------------- round trips


def test_round_trip_is_exact_including_unknown_keys(
    tmp_path: Path, results_factory: Factory
) -> None:
    document = results_factory()
    tricky = [0.1 + 0.2, 5e-324, 1.7976931348623157e308, 1 / 3, 2.0**60 + 2.0**8, -1e-300]
    document["measurements"][0]["suv_max"] = tricky[0]
    document["measurements"][1]["total_uptake_bq"] = tricky[1]
    document["measurements"][2]["volume_ml"] = tricky[2]
    document["timepoints"][0]["scans"][0]["suv_bw_factor"] = tricky[3]
    document["timepoints"][0]["scans"][0]["injected_activity_bq"] = tricky[4]
    document["lesions"][0]["timepoints"]["TP01"]["centroid_baseline_lps_mm"][2] = tricky[5]
    # keys a newer pipeline may add, at every level
    document["kinetics"] = {"L0001": {"patlak_ki_per_min": 0.0123, "fit": [1.5, 2.25]}}
    document["software"]["git"] = "abc123"
    document["study"]["site"] = "Hospital X"
    document["timepoints"][1]["note"] = None
    document["timepoints"][1]["scans"][1]["reconstruction"] = {"iterations": 3, "subsets": 21}
    document["lesions"][1]["organ"] = "liver"
    document["lesions"][1]["timepoints"]["TP02"]["suv_peak"] = 4.25
    document["measurements"][3]["recovery_coefficient"] = 0.875
    document["events"][0]["rule"] = "antigen.loss/v1"
    saved = copy.deepcopy(document)

    url = _url(tmp_path / "results.db")
    summary = save_results(document, url)
    loaded = load_results(url, "study-A")

    assert document == saved  # the input is not modified
    assert loaded == saved
    assert json.dumps(loaded, sort_keys=True) == json.dumps(saved, sort_keys=True)  # same order too
    assert [_bits(v) for v in tricky] == [
        _bits(loaded["measurements"][0]["suv_max"]),
        _bits(loaded["measurements"][1]["total_uptake_bq"]),
        _bits(loaded["measurements"][2]["volume_ml"]),
        _bits(loaded["timepoints"][0]["scans"][0]["suv_bw_factor"]),
        _bits(loaded["timepoints"][0]["scans"][0]["injected_activity_bq"]),
        _bits(loaded["lesions"][0]["timepoints"]["TP01"]["centroid_baseline_lps_mm"][2]),
    ]
    assert summary.created
    assert summary.study_key == "study-A"
    assert dict(summary.rows) == {
        "timepoints": 3,
        "lesions": 3,
        "scans": 6,
        "lesion_observations": 9,
        "measurements": 3 * 2 * (3 + 3),
        "events": 2,
    }


def test_columns_follow_the_pipeline_results_schema() -> None:
    """Every column's key is one the pipeline writes; a NOT NULL column's key is required.

    Checked against ``data/results.schema.json`` (the pipeline's JSON Schema), so a renamed or
    dropped key in results.json fails here rather than at the end of a long run.
    """
    from sqlalchemy import inspect

    from immunopet.result import results_schema
    from immunopet.store import _models as m

    top = results_schema()["properties"]
    timepoint = top["timepoints"]["items"]
    lesion = top["lesions"]["items"]
    objects: dict[type[m.Base], dict[str, Any]] = {
        m.Study: top["study"],
        m.Run: top["software"],
        m.Timepoint: timepoint,
        m.Scan: timepoint["properties"]["scans"]["items"],
        m.LesionRow: lesion,
        m.LesionObservation: lesion["properties"]["timepoints"]["additionalProperties"],
        m.Measurement: top["measurements"]["items"],
        m.Event: top["events"]["items"],  # a placeholder until the monitor rules land
    }
    for model, spec in objects.items():
        columns = inspect(model).columns
        required = set(spec.get("required", ()))
        not_null = {k for k, a in model.document_keys.items() if not columns[a].nullable}
        assert not_null <= required, model.__name__
        if model is not m.Event and "properties" in spec:
            keys = set(model.document_keys) | set(model.triples)
            assert keys <= set(spec["properties"]), (model.__name__, keys - set(spec["properties"]))


def test_absent_optional_keys_read_back_absent(tmp_path: Path, results_factory: Factory) -> None:
    document = results_factory()
    document["events"] = [{"type": "crs", "day": 2.0}, {"type": "icans", "day": 5.5}]  # no ids
    document["lesions"][0]["timepoints"]["TP02"] = {"detected": False}
    for key in ("n_voxels", "suv_mean_se", "percent_id", "target"):
        del document["measurements"][0][key]
    del document["timepoints"][0]["scans"][0]["decay_correction"]
    del document["lesions"][1]["first_day"]
    url = _url(tmp_path / "r.db")
    save_results(document, url)
    assert load_results(url, "study-A") == document


def test_pipeline_study_result_round_trips(tmp_path: Path) -> None:
    """A document made by ``StudyResult.to_dict`` (as written to results.json) reads back equal."""
    from immunopet import result as r

    scan = r.ScanResult(
        scan_id="TP01-fdg", tracer="fdg", agent="[18F]FDG", target=None, nuclide="F-18",
        series_uid="1.2.3.4", path="/data/TP01/pet", injected_activity_bq=2.71e8,
        injection_datetime="2026-03-02T09:00:00", scan_datetime="2026-03-02T10:00:00",
        weight_kg=71.5, suv_bw_factor=2.6383763837638377e-4, decay_correction="START",
        noise={"voxel_cv": 0.12},
    )  # fmt: skip
    timepoint = r.TimepointResult(
        timepoint_id="TP01", day=1.0, datetime="2026-03-02T10:00:00", ct_series_uid=None,
        ct_path=None, scans=(scan,), registration={"method": "identity"},
    )  # fmt: skip
    lesion = r.LesionResult(
        tracking_id="L001", status="persistent", first_day=1.0,
        timepoints={"TP01": r.LesionTimepoint(True, (10.5, -20.25, -300.125), None, 4.2)},
    )  # fmt: skip
    measurement = r.Measurement(
        voi_type="lesion", voi_id="L001", timepoint_id="TP01", day=1.0, tracer="fdg",
        target=None, n_voxels=1234, volume_ml=4.2, suv_max=9.87, suv_mean=5.43,
        suv_mean_se=None, suv_peak=7.65, suv_sd=1.23, cov=0.2265, mean_bq_per_ml=2.0e4,
        mean_bq_per_ml_se=None, total_uptake_bq=8.4e4, percent_id=0.031, percent_id_se=None,
        lesion_to_blood=4.5,
    )  # fmt: skip
    study = r.StudyResult(
        patient_id="P001", study_key="abc", infusion_datetime="2026-03-01T12:00:00",
        car_t_product=None, car_t_target="CD19", lesion_tracer="fdg",
        detection_method={"name": "threshold"}, timepoints=(timepoint,), lesions=(lesion,),
        measurements=(measurement,), warnings=("a warning",), software_version="0.1.0",
    )  # fmt: skip
    document = study.to_dict()
    as_written = json.loads(json.dumps(document, default=list))  # tuples become lists in JSON
    url = _url(tmp_path / "r.db")
    save_results(document, url)
    assert load_results(url, "abc") == as_written


def test_empty_lists_and_null_centroid_round_trip(tmp_path: Path, results_factory: Factory) -> None:
    document = results_factory(n_lesions=1, n_timepoints=1)
    document["lesions"][0]["timepoints"]["TP01"] = {
        "detected": False,
        "centroid_lps_mm": None,
        "volume_ml": None,
    }
    document["timepoints"][0]["scans"] = []
    document["events"] = []
    document["warnings"] = []
    url = _url(tmp_path / "r.db")
    save_results(document, url)
    assert load_results(url, "study-A") == document


def test_default_url_is_a_file_in_the_output_folder(
    tmp_path: Path, results_factory: Factory
) -> None:
    url = default_url(tmp_path)
    assert url == f"sqlite:///{tmp_path / DEFAULT_DB_NAME}"
    save_results(results_factory(), url)
    assert (tmp_path / DEFAULT_DB_NAME).is_file()
    odd = tmp_path / "a?b#c%d"
    odd.mkdir()
    save_results(results_factory(), default_url(odd))  # URL-special characters are escaped
    assert (odd / DEFAULT_DB_NAME).is_file()


# ------------------------------------------------------------------------- re-runs


def test_saving_the_same_study_again_replaces_it(tmp_path: Path, results_factory: Factory) -> None:
    db = tmp_path / "r.db"
    document = results_factory()
    first = save_results(document, _url(db))
    counts = _counts(db)
    second = save_results(document, _url(db))

    assert (first.created, second.created) == (True, False)
    assert first.run_id != second.run_id
    assert _counts(db) == counts | {"runs": 2}  # same rows; one more run in the history
    assert counts["measurements"] == len(document["measurements"])
    assert counts["studies"] == 1

    changed = copy.deepcopy(document)
    changed["measurements"][4]["suv_max"] = 12.5
    changed["study"]["car_t_product"] = None
    del changed["lesions"][2]  # a lesion no longer tracked: its rows must go
    changed["measurements"] = [m for m in changed["measurements"] if m["voi_id"] != "L0003"]
    changed["events"].pop()
    save_results(changed, _url(db))

    assert load_results(_url(db), "study-A") == changed
    after = _counts(db)
    assert after["lesions"] == 2
    assert after["lesion_observations"] == 2 * 3
    assert after["measurements"] == len(document["measurements"]) - 3 * 2
    assert after["events"] == 1
    assert after["runs"] == 3
    assert _pragma(db, "foreign_key_check") == []
    assert _pragma(db, "integrity_check") == [("ok",)]


def test_load_gives_software_of_the_latest_run(tmp_path: Path, results_factory: Factory) -> None:
    url = _url(tmp_path / "r.db")
    document = results_factory()
    save_results(document, url)
    document["software"]["version"] = "0.2.0"
    save_results(document, url)
    assert load_results(url, "study-A")["software"] == {"name": "immunopet", "version": "0.2.0"}


def test_two_studies_coexist_and_update_independently(
    tmp_path: Path, results_factory: Factory
) -> None:
    db = tmp_path / "r.db"
    a = results_factory(study_key="study-A", patient_id="P001", seed=1)
    b = results_factory(study_key="study-B", patient_id="P002", n_lesions=5, seed=2)
    save_results(a, _url(db))
    save_results(b, _url(db))
    a2 = copy.deepcopy(a)
    a2["measurements"][0]["suv_mean"] = 3.125
    a2["lesions"].append(
        {
            "tracking_id": "L0099",
            "status": "new",
            "timepoints": {
                "TP03": {"detected": True, "centroid_lps_mm": [1.0, 2.0, 3.0], "volume_ml": 2.5}
            },
        }
    )
    save_results(a2, _url(db))

    assert load_results(_url(db), "study-A") == a2
    assert load_results(_url(db), "study-B") == b
    counts = _counts(db)
    assert counts["studies"] == 2
    assert counts["lesions"] == 4 + 5
    assert counts["measurements"] == len(a2["measurements"]) + len(b["measurements"])


def test_rollback_journal_and_foreign_keys(tmp_path: Path, results_factory: Factory) -> None:
    db = tmp_path / "r.db"
    save_results(results_factory(), _url(db))
    assert _pragma(db, "journal_mode") == [("delete",)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]  # one file after the commit
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA foreign_keys=ON")
        with pytest.raises(sqlite3.IntegrityError):  # a measurement of an unknown timepoint
            connection.execute(
                "UPDATE measurements SET timepoint_id = 'TP99' WHERE id = "
                "(SELECT min(id) FROM measurements)"
            )
        connection.execute("DELETE FROM studies")  # cascades to every child table
        connection.commit()
    finally:
        connection.close()
    assert _counts(db) == dict.fromkeys((*DATA_TABLES, "runs"), 0)


# ------------------------------------------------------------------------- malformed documents


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (_set("measurements/3/suv_max", math.nan), "measurements[3].suv_max", "use null"),
        (_set("measurements/3/suv_mean", math.inf), "measurements[3].suv_mean", "use null"),
        (_set("measurements/0/suv_max", None), "measurements[0].suv_max", "missing"),
        (_set("measurements/0/suv_max", "7.5"), "measurements[0].suv_max", "number"),
        (_set("measurements/0/suv_max", True), "measurements[0].suv_max", "number"),
        (_set("measurements/5/timepoint_id", "TP09"), "measurements[5].timepoint_id", "TP09"),
        (_set("study/study_key", KeyError), "study.study_key", "missing"),
        (_set("study/infusion_datetime", "01/03/2026"), "study.infusion_datetime", "ISO 8601"),
        (_set("study/patient_id", "P" * 65), "study.patient_id", "64"),
        (
            _set("lesions/0/timepoints/TP01/detected", 1),
            "lesions[0].timepoints.TP01.detected",
            "true",
        ),
        (
            _set("lesions/0/timepoints/TP01/centroid_lps_mm", [1.0, 2.0]),
            "lesions[0].timepoints.TP01.centroid_lps_mm",
            "3 coordinates",
        ),
        (
            _set("lesions/1/timepoints/TP07", {"detected": True}),
            "lesions[1].timepoints.TP07",
            "TP07",
        ),
        (_set("events/0/evidence", {"x": math.nan}), "events[0].evidence", "JSON"),
        (_set("events/1/event_id", "E001"), "events[1]", "E001"),
        (_set("lesions/2/tracking_id", "L0001"), "lesions[2]", "L0001"),
        (_set("measurements/1", None), "measurements[1]", "object"),
        (_set("timepoints", {}), "timepoints", "list"),
        (_set("warnings/0", 3), "warnings[0]", "string"),
        (_set("schema_version", "2.0"), "schema_version", "1.x"),
        (_set("events", KeyError), "events", "missing"),
    ],
)
def test_malformed_document_is_refused_before_the_database_is_touched(
    tmp_path: Path,
    results_factory: Factory,
    edit: Callable[[dict[str, Any]], None],
    field: str,
    words: str,
) -> None:
    db = tmp_path / "r.db"
    document = results_factory()
    save_results(document, _url(db))
    before = db.read_bytes()
    bad = copy.deepcopy(document)
    edit(bad)
    with pytest.raises(InputError, match=words) as caught:
        save_results(bad, _url(db))
    assert caught.value.field == field
    assert db.read_bytes() == before


def test_duplicate_measurement_key_names_both_places(
    tmp_path: Path, results_factory: Factory
) -> None:
    document = results_factory()
    document["measurements"].append(dict(document["measurements"][7]) | {"suv_max": 1.5})
    last = len(document["measurements"]) - 1
    with pytest.raises(InputError, match=r"measurements\[7\]") as caught:
        save_results(document, _url(tmp_path / "r.db"))
    assert caught.value.field == f"measurements[{last}]"
    assert not (tmp_path / "r.db").exists()


# ------------------------------------------------------------------------- database errors


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", "not a database URL"),
        ("nosuchdatabase://host/db", "cannot use the database"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_bad_url_names_the_db_option(url: str, words: str, results_factory: Factory) -> None:
    with pytest.raises(InputError, match=words) as caught:
        save_results(results_factory(), url)
    assert caught.value.field == "--db"
    assert caught.value.hint


def test_missing_folder_or_file_and_unknown_study(tmp_path: Path, results_factory: Factory) -> None:
    with pytest.raises(InputError, match="does not exist") as caught:
        save_results(results_factory(), _url(tmp_path / "no" / "r.db"))
    assert caught.value.field == "--db"
    with pytest.raises(InputError, match="no database"):
        load_results(_url(tmp_path / "r.db"), "study-A")
    assert not (tmp_path / "r.db").exists()  # reading never creates a database

    save_results(results_factory(study_key="study-B"), _url(tmp_path / "r.db"))
    with pytest.raises(InputError, match="no study 'study-A'") as caught:
        load_results(_url(tmp_path / "r.db"), "study-A")
    assert caught.value.hint is not None
    assert "'study-B'" in caught.value.hint


def test_password_is_never_printed() -> None:
    with pytest.raises(InputError) as caught:
        save_results({}, "nosuchdatabase://user:secret@host/db")
    assert "secret" not in str(caught.value)
    with pytest.raises(InputError) as caught:
        load_results("nosuchdatabase://user:secret@host/db", "k")
    assert "secret" not in str(caught.value)
    assert "***" in str(caught.value)


def test_locked_database_waits_then_fails_naming_db(
    tmp_path: Path, results_factory: Factory
) -> None:
    db = tmp_path / "r.db"
    document = results_factory()
    save_results(document, _url(db))
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        changed = copy.deepcopy(document)
        changed["measurements"][0]["suv_max"] = 2.5
        with pytest.raises(InputError, match="locked") as caught:
            save_results(changed, _url(db), lock_timeout_s=0.05)
        assert caught.value.field == "--db"
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    assert load_results(_url(db), "study-A") == document
    save_results(changed, _url(db))  # once the lock is gone the same save succeeds
    assert load_results(_url(db), "study-A") == changed


def test_newer_schema_is_refused(tmp_path: Path, results_factory: Factory) -> None:
    db = tmp_path / "r.db"
    save_results(results_factory(), _url(db))
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    connection.close()
    before = db.read_bytes()
    with pytest.raises(InputError, match=f"schema {SCHEMA_VERSION + 1}, newer") as caught:
        save_results(results_factory(), _url(db))
    assert caught.value.field == "--db"
    with pytest.raises(InputError, match="newer"):
        load_results(_url(db), "study-A")
    assert db.read_bytes() == before


def _as_schema_1(db: Path) -> None:
    """Rewrite a database as schema 1 stored it: without the columns schema 2 added to
    ``measurements``, their values in the rows' ``extra`` (rows that lacked a key have
    neither)."""
    added = ADDED_COLUMNS[2]["measurements"]
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            f"SELECT id, extra, absent_keys, {', '.join(added)} FROM measurements"
        ).fetchall()
        for row_id, extra_text, absent_text, *values in rows:
            extra = json.loads(extra_text) if extra_text else {}
            absent = json.loads(absent_text) if absent_text else []
            for name, value in zip(added, values, strict=True):
                if name in absent:
                    absent.remove(name)
                else:
                    extra[name] = bool(value) if name == "lesion_found" else value
            connection.execute(
                "UPDATE measurements SET extra = ?, absent_keys = ? WHERE id = ?",
                (
                    json.dumps(extra) if extra else None,
                    json.dumps(absent) if absent else None,
                    row_id,
                ),
            )
        for name in added:
            connection.execute(f"ALTER TABLE measurements DROP COLUMN {name}")
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.close()


def test_a_schema_1_database_is_read_as_it_is_and_upgraded_by_the_next_save(
    tmp_path: Path, results_factory: Factory
) -> None:
    db = tmp_path / "r.db"
    a = results_factory(study_key="study-A", patient_id="P001", seed=1)
    save_results(a, _url(db))
    _as_schema_1(db)
    columns = {row[1] for row in _pragma(db, "table_info(measurements)")}
    assert "lesion_found" not in columns
    before = db.read_bytes()
    # Reading leaves the file as it was; the values come from ``extra``.
    assert load_results(_url(db), "study-A") == a
    assert db.read_bytes() == before
    # The next save upgrades it: the columns exist and hold the first study's values.
    b = results_factory(study_key="study-B", patient_id="P002", seed=2)
    save_results(b, _url(db))
    with sqlite3.connect(db) as connection:
        version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone() == (str(SCHEMA_VERSION),)
        found = connection.execute(
            "SELECT m.voi_id, m.timepoint_id, m.tracer, m.lesion_found, m.voi_source, m.extra "
            "FROM measurements m JOIN studies s ON s.id = m.study_id "
            "WHERE s.study_key = 'study-A' AND m.voi_type = 'lesion'"
        ).fetchall()
    connection.close()
    expected = {
        (m["voi_id"], m["timepoint_id"], m["tracer"]): (m["lesion_found"], m["voi_source"])
        for m in a["measurements"]
        if m["voi_type"] == "lesion"
    }
    assert {(v, t, r): (bool(f), s) for v, t, r, f, s, _ in found} == expected
    assert all(extra is None or "lesion_found" not in json.loads(extra) for *_, extra in found)
    assert load_results(_url(db), "study-A") == a
    assert load_results(_url(db), "study-B") == b


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("CREATE TABLE studies (x INTEGER)", "not an immunopet results database"),
        (
            "CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('application', 'x')",
            "not immunopet",
        ),
        ("CREATE TABLE meta (name TEXT)", "not immunopet"),
    ],
)
def test_foreign_database_is_refused(
    tmp_path: Path, sql: str, words: str, results_factory: Factory
) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as connection:
        connection.executescript(sql)
    connection.close()
    with pytest.raises(InputError, match=words) as caught:
        save_results(results_factory(), _url(db))
    assert caught.value.field == "--db"


def test_missing_column_is_a_schema_mismatch(tmp_path: Path, results_factory: Factory) -> None:
    db = tmp_path / "r.db"
    save_results(results_factory(), _url(db))
    with sqlite3.connect(db) as connection:
        connection.execute("ALTER TABLE events DROP COLUMN confidence")
    connection.close()
    with pytest.raises(InputError, match="lacks the columns confidence of table 'events'"):
        save_results(results_factory(), _url(db))


def test_not_a_database_file(tmp_path: Path, results_factory: Factory) -> None:
    db = tmp_path / "r.db"
    db.write_bytes(b"this is a text file, not SQLite\n" * 64)
    with pytest.raises(InputError, match="not a database") as caught:
        save_results(results_factory(), _url(db))
    assert caught.value.field == "--db"


def test_naive_started_is_refused(tmp_path: Path, results_factory: Factory) -> None:
    from datetime import datetime

    with pytest.raises(InputError, match="time zone"):
        save_results(results_factory(), _url(tmp_path / "r.db"), started=datetime(2026, 3, 1))


# ------------------------------------------------------------------------- killed saves

_CHILD_SAVE = """
import json, os, sys, time
from pathlib import Path
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session
from immunopet.store import DEFAULT_DB_NAME, atomic_output_folder, default_url, save_results

document_path, ready_path, mode, target = sys.argv[1:5]
ready = Path(ready_path)

@event.listens_for(Session, "before_commit")
def pause_inside_the_transaction(session):
    # every row is written; report what the transaction holds, then wait to be killed
    rows = session.execute(text("SELECT count(*) FROM measurements")).scalar_one()
    database = Path(session.execute(text("PRAGMA database_list")).all()[0][2])
    journal = database.with_name(database.name + "-journal").exists()
    Path(ready_path + ".tmp").write_text(json.dumps({"measurements": rows, "journal": journal}))
    os.replace(ready_path + ".tmp", ready)
    time.sleep(600)

document = json.loads(Path(document_path).read_text())
if mode == "db":
    save_results(document, target)
else:
    with atomic_output_folder(target, keep=[DEFAULT_DB_NAME]) as folder:
        (folder / "results.json").write_text(json.dumps(document))
        (folder / "measurements.csv").write_text("partial\\n" * 1000)
        save_results(document, default_url(folder))
"""


def _kill_inside_save(
    kill_when_ready: Callable[..., str],
    tmp_path: Path,
    document: dict[str, Any],
    mode: str,
    target: str,
) -> dict[str, Any]:
    """Run a child that saves ``document`` and SIGKILL it inside the transaction."""
    document_path = tmp_path / "big.json"
    document_path.write_text(json.dumps(document))
    ready = tmp_path / "ready.json"
    text = kill_when_ready(_CHILD_SAVE, str(document_path), str(ready), mode, target, ready=ready)
    state: dict[str, Any] = json.loads(text)
    return state


@pytest.mark.slow
def test_killed_save_leaves_the_previous_state(
    tmp_path: Path, results_factory: Factory, kill_child_when_ready: Callable[..., str]
) -> None:
    db = tmp_path / "r.db"
    previous = results_factory(n_lesions=4)
    other = results_factory(study_key="study-B", seed=5)
    save_results(previous, _url(db))
    save_results(other, _url(db))
    counts = _counts(db)
    big = results_factory(n_lesions=4997, n_timepoints=5, seed=3)  # 50 000 measurements
    assert len(big["measurements"]) == 50_000

    state = _kill_inside_save(kill_child_when_ready, tmp_path, big, "db", _url(db))

    # the kill landed inside the transaction: all rows written, journal on disk
    assert state == {"measurements": 50_000 + len(other["measurements"]), "journal": True}
    assert (tmp_path / "r.db-journal").exists()  # the hot journal the next reader rolls back
    assert _pragma(db, "integrity_check") == [("ok",)]
    assert not (tmp_path / "r.db-journal").exists()
    assert _counts(db) == counts
    assert load_results(_url(db), "study-A") == previous
    assert load_results(_url(db), "study-B") == other
    assert _pragma(db, "foreign_key_check") == []


@pytest.mark.slow
def test_killed_first_save_leaves_nothing(
    tmp_path: Path, results_factory: Factory, kill_child_when_ready: Callable[..., str]
) -> None:
    db = tmp_path / "r.db"
    big = results_factory(n_lesions=997, n_timepoints=5, seed=4)

    state = _kill_inside_save(kill_child_when_ready, tmp_path, big, "db", _url(db))

    assert state["measurements"] == len(big["measurements"])
    assert _pragma(db, "integrity_check") == [("ok",)]
    tables = sqlite3.connect(db)
    try:  # not even the tables: they were created in the killed transaction
        assert tables.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        tables.close()
    with pytest.raises(InputError, match="holds no immunopet results"):
        load_results(_url(db), "study-A")
    small = results_factory()
    save_results(small, _url(db))  # the file is usable as it is
    assert load_results(_url(db), "study-A") == small


@pytest.mark.slow
def test_killed_run_leaves_out_and_default_database_as_they_were(
    tmp_path: Path,
    results_factory: Factory,
    hash_tree: Callable[[Path], dict[str, str]],
    kill_child_when_ready: Callable[..., str],
) -> None:
    """Issue 5 acceptance: a killed run leaves no partial outputs and no half-written rows."""
    out = tmp_path / "out"
    previous = results_factory(n_lesions=4)
    with atomic_output_folder(out, keep=[DEFAULT_DB_NAME]) as folder:
        (folder / "results.json").write_text(json.dumps(previous))
        (folder / "measurements.csv").write_text("voi_id,suv_max\nL0001,3.5\n")
        save_results(previous, default_url(folder))
    before = hash_tree(out)
    big = results_factory(n_lesions=997, n_timepoints=5, seed=3)  # 10 000 measurements

    state = _kill_inside_save(kill_child_when_ready, tmp_path, big, "out", str(out))

    assert state == {"measurements": len(big["measurements"]), "journal": True}
    assert hash_tree(out) == before  # every file byte for byte, the database included
    assert load_results(default_url(out), "study-A") == previous
    assert _pragma(out / DEFAULT_DB_NAME, "integrity_check") == [("ok",)]
    stale = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert len(stale) == 1  # the killed run's temporary folder, hidden beside out

    second = results_factory(study_key="study-B", seed=9)
    with atomic_output_folder(out, keep=[DEFAULT_DB_NAME]) as folder:
        save_results(second, default_url(folder))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []
    assert load_results(default_url(out), "study-A") == previous  # kept across runs
    assert load_results(default_url(out), "study-B") == second


def test_schema_compiles_for_postgresql() -> None:
    """The same models serve a team's PostgreSQL: JSONB, doubles, names within 63 bytes."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    from immunopet.store._models import Base

    dialect = postgresql.dialect()
    ddl = {
        name: str(CreateTable(t).compile(dialect=dialect))
        for name, t in Base.metadata.tables.items()
    }
    assert "warnings JSONB NOT NULL" in ddl["studies"]
    assert "evidence JSONB," in ddl["events"]
    assert "suv_max DOUBLE PRECISION NOT NULL" in ddl["measurements"]
    assert "suv_peak DOUBLE PRECISION," in ddl["measurements"]
    assert "detected BOOLEAN NOT NULL" in ddl["lesion_observations"]
    assert (
        "CONSTRAINT uq_measurements_study_id_voi_type_voi_id_timepoint_id_tracer "
        "UNIQUE (study_id, voi_type, voi_id, timepoint_id, tracer)"
    ) in ddl["measurements"]
    names = [c.name for t in Base.metadata.tables.values() for c in t.constraints]
    assert all(isinstance(n, str) and len(n.encode()) <= 63 for n in names)
    assert len(names) == len(set(names))
    assert "decay_correction VARCHAR(64)," in ddl["scans"]


def test_default_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_url("out") == f"sqlite:///{tmp_path / 'out' / DEFAULT_DB_NAME}"
