"""Typed accessors for YAML documents, whose errors name the file and the key path.

One place for what the study manifest (:mod:`immunopet.io.manifest`) and the simulator's
scenario files (:mod:`immunopet.simulate._scenario`) both need: a YAML loader that refuses a
repeated key, mappings with required and optional keys, lists, text and bounded numbers. Each
error is an :class:`~immunopet.errors.InputError` with the file as ``path`` and the key path
(``lesions[2].diameter_mm``) as ``field``.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Final, cast

import yaml

from immunopet.errors import InputError

__all__ = ["FieldReader", "StrictLoader", "join"]

#: YAML 1.1 reads ``2.0e6`` (no sign on the exponent) as a string.
_YAML11_FLOAT: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)[eE][+-]?\d+$")


class StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key repeated in one mapping (YAML keeps the last)."""


def _mapping_without_repeats(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is repeated", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_repeats,
)


def join(where: str, key: str) -> str:
    """The key path of ``key`` inside ``where`` (``"car_t" + "target"``: ``car_t.target``)."""
    return f"{where}.{key}" if where else key


class FieldReader:
    """Validating accessors; ``path`` is the file (or a label such as a scenario name).

    Subclasses add the document's own value kinds (dates, distributions ...).
    """

    #: Whether a lower bound of :meth:`number` is inclusive when a call does not say.
    low_inclusive: ClassVar[bool] = True

    def __init__(self, path: str | None) -> None:
        self.path = path

    def fail(self, where: str, message: str, hint: str | None = None) -> InputError:
        """The error for the key path ``where`` (return it to ``raise``)."""
        return InputError(message, path=self.path, field=where or None, hint=hint)

    def mapping(
        self,
        value: object,
        where: str,
        *,
        required: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A mapping with only the ``required`` (present, not null) and ``optional`` keys."""
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, got {type(value).__name__}")
        allowed = (*required, *optional)
        for key in value:
            if key not in allowed:
                raise self.fail(
                    join(where, str(key)), "unknown key", f"allowed keys: {', '.join(allowed)}"
                )
        for key in required:
            if key not in value or value[key] is None:
                raise self.fail(join(where, key), "missing")
        return cast(dict[str, Any], value)

    def sequence(self, value: object, where: str, *, empty: bool = False) -> list[Any]:
        """A list (an empty one only with ``empty``)."""
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list, got {type(value).__name__}")
        if not value and not empty:
            raise self.fail(where, "must not be empty")
        return value

    def text(self, value: object, where: str) -> str:
        """Non-empty text, stripped; a number is read as its text (IDs may look like numbers)."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def number(
        self,
        value: object,
        where: str,
        *,
        low: float | None = None,
        low_inclusive: bool | None = None,
        high: float | None = None,
        high_inclusive: bool = True,
        hint: str | None = None,
    ) -> float:
        """A finite number within the bounds (``low_inclusive`` default: the class's)."""
        inclusive = self.low_inclusive if low_inclusive is None else low_inclusive
        if isinstance(value, str) and _YAML11_FLOAT.match(value):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(where, f"must be finite, got {value!r}")
        if low is not None and (number < low or (number == low and not inclusive)):
            raise self.fail(
                where, f"must be {'>=' if inclusive else '>'} {low:g}, got {value!r}", hint
            )
        if high is not None and (number > high or (number == high and not high_inclusive)):
            raise self.fail(
                where, f"must be {'<=' if high_inclusive else '<'} {high:g}, got {value!r}", hint
            )
        return number
