"""Reading a results folder for the report: ``results.json`` and ``images/index.json``.

The report computes nothing scientific: every number it shows is read here from
``results.json`` (schema 1.x, ``docs/results.md``), and the pictures from the images the
analysis wrote (``images/index.json``). A missing or malformed file is an
:class:`~immunopet.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from immunopet.errors import InputError

__all__ = ["load_image_index", "load_results"]

RESULTS_NAME: Final = "results.json"
INDEX_NAME: Final = "images/index.json"
_SUPPORTED_MAJOR: Final = "1"
_HINT: Final = "run `immunopet analyze STUDY_DIR --out DIR` and pass DIR"

#: What the report reads from each list of results.json: list name -> required keys of an item.
_REQUIRED_ITEM_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "timepoints": ("timepoint_id", "day", "scans"),
    "lesions": ("tracking_id", "status", "timepoints"),
    "measurements": ("voi_type", "voi_id", "timepoint_id", "day", "tracer", "suv_mean"),
    "events": ("type", "day"),
}
_REQUIRED_SCAN_KEYS: Final = ("tracer", "agent", "nuclide")
_REQUIRED_STUDY_KEYS: Final = ("patient_id", "infusion_datetime", "lesion_tracer")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", path=path, hint=_HINT) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            path=path,
            hint=_HINT,
        ) from exc


def _require(condition: bool, path: Path, field: str, message: str) -> None:
    if not condition:
        raise InputError(
            message, path=path, field=field, hint="the file must follow docs/results.md"
        )


def _check(document: Any, path: Path) -> dict[str, Any]:
    """Check the parts of the document the report relies on; return it typed."""
    _require(isinstance(document, dict), path, "(top level)", "expected a JSON object")
    version = document.get("schema_version")
    _require(isinstance(version, str), path, "schema_version", "missing or not a string")
    _require(
        version.split(".")[0] == _SUPPORTED_MAJOR,
        path,
        "schema_version",
        f"version {version} is not supported (this immunopet reads {_SUPPORTED_MAJOR}.x)",
    )
    study = document.get("study")
    _require(isinstance(study, dict), path, "study", "missing or not an object")
    for key in _REQUIRED_STUDY_KEYS:
        _require(key in study, path, f"study.{key}", "missing")
    for name, keys in _REQUIRED_ITEM_KEYS.items():
        items = document.get(name)
        _require(isinstance(items, list), path, name, "missing or not a list")
        for index, item in enumerate(items):
            where = f"{name}[{index}]"
            _require(isinstance(item, dict), path, where, "expected an object")
            for key in keys:
                _require(key in item, path, f"{where}.{key}", "missing")
            if name == "timepoints":
                _require(isinstance(item["scans"], list), path, f"{where}.scans", "not a list")
                for s, scan in enumerate(item["scans"]):
                    _require(isinstance(scan, dict), path, f"{where}.scans[{s}]", "not an object")
                    for key in _REQUIRED_SCAN_KEYS:
                        _require(key in scan, path, f"{where}.scans[{s}].{key}", "missing")
            if name == "lesions":
                _require(
                    isinstance(item["timepoints"], dict),
                    path,
                    f"{where}.timepoints",
                    "not an object",
                )
    checked: dict[str, Any] = document
    return checked


def load_results(results_dir: Path) -> dict[str, Any]:
    """Read and check ``results_dir/results.json``.

    Parameters
    ----------
    results_dir : pathlib.Path
        An output folder of ``immunopet analyze``.

    Returns
    -------
    dict
        The results document.

    Raises
    ------
    InputError
        The folder or file is missing, the file is not JSON, or a field the report needs is
        missing or of the wrong type (the message names it).

    """
    if not results_dir.is_dir():
        raise InputError("not a folder", path=results_dir, field="RESULTS_DIR", hint=_HINT)
    path = results_dir / RESULTS_NAME
    if not path.is_file():
        raise InputError(f"no {RESULTS_NAME} in this folder", path=results_dir, hint=_HINT)
    return _check(_read_json(path), path)


def load_image_index(results_dir: Path) -> dict[str, Any] | None:
    """Read ``images/index.json`` (``None`` when the folder has no images, e.g. an old run).

    Raises
    ------
    InputError
        The index exists but is not JSON or lacks ``timepoints``.

    """
    path = results_dir / INDEX_NAME
    if not path.is_file():
        return None
    index = _read_json(path)
    _require(isinstance(index, dict), path, "(top level)", "expected a JSON object")
    timepoints = index.get("timepoints")
    _require(isinstance(timepoints, Mapping), path, "timepoints", "missing or not an object")
    checked: dict[str, Any] = index
    return checked
