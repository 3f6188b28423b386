"""The settings of `batchfit fit`: one table for flags, TOML files and `run.json`.

Precedence: built-in defaults < `--config run.toml` < flags on the command
line. A TOML file uses the flag names with `_` or `-` (`batch_size = 256`),
at the top level or in a `[fit]` table; an unknown key is an error naming it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import Any

from batchfit.cli.errors import CliError

__all__ = ["FitSettings", "SETTING_TYPES", "load_toml", "merge_settings"]


@dataclasses.dataclass
class FitSettings:
    """Everything that decides a `fit` run; saved in `run.json` and compared on resume."""

    data: list[str] = dataclasses.field(default_factory=list)
    sql: str | None = None  # a query instead of files, on --db
    db: str | None = None
    order_by: str | None = None
    target: list[str] = dataclasses.field(default_factory=list)
    features: list[str] | None = None
    drop: list[str] = dataclasses.field(default_factory=list)
    model: str | None = None  # None: DEFAULT_HIDDEN plus the output the target calls for
    loss: str | None = None  # None: mse, binary or sparse categorical cross-entropy
    metrics: list[str] = dataclasses.field(default_factory=list)
    optimizer: str = "adam"
    learning_rate: float | None = None
    epochs: int = 1
    batch_size: int = 32
    validation_split: float = 0.0
    validation_data: list[str] = dataclasses.field(default_factory=list)
    shuffle_buffer: int = 100_000
    seed: int = 0
    normalize: bool = True
    normalize_target: bool = True
    task: str = "auto"
    on_bad_rows: str = "error"
    on_missing: str = "impute"
    max_categories: int = 100
    min_category_count: int = 5
    early_stopping: int | None = None
    checkpoint_best: bool = False
    tensorboard: str | None = None
    out: str | None = None
    backup_every: int = 1000

    def to_json(self) -> dict[str, Any]:
        """The settings as saved in `run.json`: a password in `--db` is masked."""
        saved = dataclasses.asdict(self)
        if self.db is not None:
            from batchfit.data._sql_connect import mask_uri

            saved["db"] = mask_uri(self.db)
        return saved


# name -> (kind, check) ; kinds: str, int, float, bool, list (comma string or list of str)
SETTING_TYPES: dict[str, str] = {
    "data": "list",
    "sql": "str",
    "db": "str",
    "order_by": "str",
    "target": "list",
    "features": "list",
    "drop": "list",
    "model": "str",
    "loss": "str",
    "metrics": "list",
    "optimizer": "str",
    "learning_rate": "float",
    "epochs": "int",
    "batch_size": "int",
    "validation_split": "float",
    "validation_data": "list",
    "shuffle_buffer": "int",
    "seed": "int",
    "normalize": "bool",
    "normalize_target": "bool",
    "task": "str",
    "on_bad_rows": "str",
    "on_missing": "str",
    "max_categories": "int",
    "min_category_count": "int",
    "early_stopping": "int",
    "checkpoint_best": "bool",
    "tensorboard": "str",
    "out": "str",
    "backup_every": "int",
}

# Settings that may differ when a run is resumed (they do not change what was computed).
RESUMABLE_CHANGES = frozenset({"epochs", "backup_every", "out", "tensorboard"})

#: the hidden layers of the default model; the output layer follows the target
DEFAULT_HIDDEN = "dense:64:relu,dense:64:relu"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _coerce(name: str, value: Any, where: str) -> Any:
    """`value` as the setting's type, or a one-line error naming the setting and `where`."""
    kind = SETTING_TYPES[name]
    label = f"{where} {name}" if where != "flag" else _flag(name)
    if kind == "list":
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            items = list(value)
        else:
            raise CliError(f"{label}: expected a string or a list of strings, got {value!r}")
        return items
    if kind == "bool":
        if not isinstance(value, bool):
            raise CliError(f"{label}: expected true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise CliError(f"{label}: expected an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CliError(f"{label}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise CliError(f"{label}: expected a string, got {value!r}")
    return value


def load_toml(path: str) -> dict[str, Any]:
    """Settings from a TOML file (top level or a `[fit]` table), checked and typed."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise CliError("--config needs Python 3.11+ or `pip install tomli`") from None
    if not os.path.isfile(path):
        raise CliError(f"--config: file {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise CliError(f"--config: {path} is not valid TOML: {e}") from None
    table = document.get("fit", document)
    if not isinstance(table, dict):
        raise CliError(f"--config: [fit] in {path} must be a table")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name == "config":
            raise CliError(f"--config: {path} cannot name another config file")
        if name not in SETTING_TYPES:
            raise CliError(
                f"--config: unknown setting {key!r} in {path}; "
                f"known settings: {', '.join(sorted(SETTING_TYPES))}"
            )
        settings[name] = _coerce(name, value, f"--config {path}:")
    return settings


def merge_settings(*layers: Mapping[str, Any]) -> FitSettings:
    """Defaults, then each layer in turn (later wins); `None` means "not given"."""
    settings = FitSettings()
    for layer in layers:
        for name, value in layer.items():
            if value is not None:
                setattr(settings, name, value)
    check(settings)
    return settings


def flags_given(namespace: Any) -> dict[str, Any]:
    """The settings given as flags (argparse leaves the others at None)."""
    given: dict[str, Any] = {}
    for name in SETTING_TYPES:
        value = getattr(namespace, name, None)
        if value is None or (name == "data" and not value):
            continue
        given[name] = _coerce(name, value, "flag") if SETTING_TYPES[name] == "list" else value
    return given


def check(s: FitSettings) -> None:
    """Validate values at the door, naming the flag."""
    if not s.data and not s.sql:
        raise CliError(
            "no data: give PATHS (e.g. houses/*.csv), data = [...] in --config, "
            "or --sql QUERY --db URI"
        )
    if s.data and s.sql:
        raise CliError("give data files or --sql, not both")
    if s.sql is not None:
        if not s.db:
            raise CliError("--sql needs --db URI (postgresql://user@host/db, duckdb:///file)")
        if "***" in s.db:
            raise CliError(
                "--db: the saved URI has its password masked; give --db again on resume "
                "(or put the password in PGPASSWORD or ~/.pgpass)"
            )
        if not s.order_by:
            raise CliError(
                "--sql needs --order-by KEY, a unique column of the query: its key ranges are "
                "what is shuffled, split between processes and resumed exactly"
            )
        if s.validation_data:
            raise CliError("--validation-data takes files; with --sql use --validation-split")
    if not s.target:
        raise CliError("--target is required: the column to predict")
    if not s.out:
        raise CliError("--out is required: the run directory (e.g. runs/houses)")
    for name, low in (("epochs", 1), ("batch_size", 1), ("backup_every", 1)):
        if getattr(s, name) < low:
            raise CliError(f"{_flag(name)} must be at least {low}, got {getattr(s, name)}")
    if s.shuffle_buffer < 0:
        raise CliError(f"--shuffle-buffer must be >= 0 rows, got {s.shuffle_buffer}")
    if not 0.0 <= s.validation_split < 1.0:
        raise CliError(f"--validation-split must be in [0, 1), got {s.validation_split}")
    if s.validation_split and s.validation_data:
        raise CliError("give --validation-split or --validation-data, not both")
    for name, choices in (
        ("task", ("auto", "regression", "classification")),
        ("on_bad_rows", ("error", "skip")),
        ("on_missing", ("impute", "skip", "error")),
    ):
        if getattr(s, name) not in choices:
            raise CliError(
                f"{_flag(name)} must be one of {', '.join(choices)}, got {getattr(s, name)!r}"
            )
    if s.max_categories < 1 or s.min_category_count < 1:
        raise CliError("--max-categories and --min-category-count must be at least 1")
    if s.early_stopping is not None and s.early_stopping < 1:
        raise CliError(f"--early-stopping PATIENCE must be at least 1, got {s.early_stopping}")
    if s.learning_rate is not None and s.learning_rate <= 0:
        raise CliError(f"--learning-rate must be positive, got {s.learning_rate}")
    from batchfit import losses, metrics, optimizers

    if s.optimizer.lower() not in optimizers.names():
        raise CliError(
            f"--optimizer: unknown optimizer {s.optimizer!r}; "
            f"valid: {', '.join(optimizers.names())}"
        )
    if s.loss is not None and s.loss.lower() not in losses.names():
        raise CliError(f"--loss: unknown loss {s.loss!r}; valid: {', '.join(losses.names())}")
    for metric in s.metrics:
        if metric.lower() not in metrics.names():
            raise CliError(
                f"--metrics: unknown metric {metric!r}; valid: {', '.join(metrics.names())}"
            )


def differences(old: Mapping[str, Any], new: FitSettings) -> list[str]:
    """Settings that differ from a saved run in ways a resume cannot honour."""
    changed = []
    for name, value in new.to_json().items():  # --db compared masked, as saved
        if name in RESUMABLE_CHANGES or name not in old:
            continue
        if old[name] != value:
            changed.append(f"{_flag(name)} {old[name]!r} -> {value!r}")
    return changed
