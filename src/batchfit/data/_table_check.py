"""Checking a `TableSpec` read from a file (`table.json`): every field's type and size."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchfit.data._table_kinds import DATE_FORMATS
from batchfit.data._table_scan import DATE_PARTS

__all__ = ["TABLE_FORMAT", "check_spec"]

TABLE_FORMAT = 1


_FEATURE_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "kind": (str,),
    "date_format": (str, type(None)),
    "parts": (list,),
    "mean": (list,),
    "variance": (list,),
    "indicator": (bool,),
    "vocabulary": (list,),
    "counts": (list,),
    "hash_bins": (int,),
}
_SPEC_FIELDS: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "features": (list,),
    "targets": (list,),
    "target_kind": (str,),
    "task": (str,),
    "classes": (list,),
    "target_mean": (list,),
    "target_variance": (list,),
    "dropped": (dict,),
    "rows": (int,),
    "skipped": (dict,),
    "min_count": (int,),
    "max_categories": (int,),
    "hash_bins": (int,),
}


def _check_fields(data: Any, fields: Mapping[str, tuple[type, ...]], where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(fields))
    missing = sorted(set(fields) - set(data))
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    for key, types in fields.items():
        value = data[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise ValueError(f"{where}.{key}: expected {types[0].__name__}, got {value!r:.60}")


def _check_list(values: list[Any], types: tuple[type, ...], where: str) -> None:
    for i, value in enumerate(values):
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"{where}[{i}]: expected {types[0].__name__}, got {value!r:.60}")


def check_spec(data: Any, where: str) -> None:
    _check_fields(data, _SPEC_FIELDS, where)
    if data["format"] != TABLE_FORMAT:
        raise ValueError(f"{where}.format: expected {TABLE_FORMAT}, got {data['format']!r}")
    if data["task"] not in ("regression", "binary", "multiclass"):
        raise ValueError(f"{where}.task: unknown task {data['task']!r}")
    for key, types in (
        ("targets", (str,)),
        ("classes", (str,)),
        ("target_mean", (float, int)),
        ("target_variance", (float, int)),
    ):
        _check_list(data[key], types, f"{where}.{key}")
    for i, feature in enumerate(data["features"]):
        at = f"{where}.features[{i}]"
        _check_fields(feature, _FEATURE_FIELDS, at)
        if feature["kind"] not in ("number", "bool", "category", "datetime"):
            raise ValueError(f"{at}.kind: unknown kind {feature['kind']!r}")
        if feature["date_format"] is not None and feature["date_format"] not in DATE_FORMATS:
            raise ValueError(f"{at}.date_format: unknown format {feature['date_format']!r}")
        _check_list(feature["parts"], (int,), f"{at}.parts")
        if any(not 0 <= p < len(DATE_PARTS) for p in feature["parts"]):
            raise ValueError(f"{at}.parts: expected indices below {len(DATE_PARTS)}")
        _check_list(feature["mean"], (float, int), f"{at}.mean")
        _check_list(feature["variance"], (float, int), f"{at}.variance")
        _check_list(feature["vocabulary"], (str,), f"{at}.vocabulary")
        _check_list(feature["counts"], (int,), f"{at}.counts")
        if not 0 <= feature["hash_bins"] <= 1 << 16:
            raise ValueError(f"{at}.hash_bins: expected 0 to 65536, got {feature['hash_bins']}")
        numeric = feature["kind"] != "category"
        width = (len(feature["parts"]) if feature["kind"] == "datetime" else 1) if numeric else 0
        if numeric and not (len(feature["mean"]) == len(feature["variance"]) == width):
            raise ValueError(f"{at}: mean and variance need {width} values each")
