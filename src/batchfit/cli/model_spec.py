"""`--model` specs: `"dense:64:relu,dropout:0.1,dense:1"` parsed, checked and built."""

from __future__ import annotations

from typing import Any

from batchfit.cli.errors import CliError

__all__ = ["build_model", "choose_head", "parse_model_spec"]


_SPEC_HELP = (
    "expected comma-separated layers: dense:UNITS[:ACTIVATION], dropout:RATE, "
    "batchnorm, activation:NAME"
)


def parse_model_spec(spec: str) -> list[tuple[str, list[str]]]:
    """`"dense:64:relu,dropout:0.1,dense:1"` as `[(kind, args), ...]`, checked."""
    from batchfit import activations

    layers: list[tuple[str, list[str]]] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            raise CliError(f"--model: empty layer in {spec!r}; {_SPEC_HELP}")
        kind, *args = [p.strip() for p in item.split(":")]
        kind = kind.lower()
        ok = True
        try:
            if kind == "dense" and len(args) in (1, 2):
                ok = int(args[0]) > 0
                if len(args) == 2:
                    activations.get(args[1])
            elif kind == "dropout" and len(args) == 1:
                ok = 0.0 <= float(args[0]) < 1.0
            elif kind == "batchnorm" and not args:
                pass
            elif kind == "activation" and len(args) == 1:
                activations.get(args[0])
            else:
                ok = False
        except ValueError as e:
            raise CliError(f"--model: bad layer {item!r}: {e}") from None
        if not ok:
            raise CliError(f"--model: bad layer {item!r}; {_SPEC_HELP}")
        layers.append((kind, args))
    if not layers or layers[-1][0] not in ("dense", "activation"):
        raise CliError(f"--model: {spec!r} must end with a dense layer; {_SPEC_HELP}")
    return layers


def build_model(
    spec: str,
    n_features: int,
    n_targets: int,
    *,
    feature_norm: Any = None,
    target_stats: tuple[list[float], list[float]] | None = None,
) -> Any:
    """A `Sequential` from a `--model` spec, with optional normalisation layers.

    Args:
        spec: the `--model` string.
        n_features: input width.
        n_targets: width the last dense layer must have.
        feature_norm: a `Normalization` layer (adapted, or to be restored) to put first.
        target_stats: `(mean, variance)` of the target; adds an inverted
            `Normalization` last, so the network learns a standardised target
            but predicts (and is scored) in the target's own units.
    """
    from batchfit.layers import Activation, BatchNormalization, Dense, Dropout, Input, Normalization
    from batchfit.models import Sequential

    layers = parse_model_spec(spec)
    dense_units = [int(args[0]) for kind, args in layers if kind == "dense"]
    if not dense_units:
        raise CliError(f"--model: {spec!r} has no dense layer; {_SPEC_HELP}")
    if dense_units[-1] != n_targets:
        raise CliError(
            f"--model: the last dense layer has {dense_units[-1]} units but the target "
            f"needs {n_targets} output(s)"
        )
    model = Sequential([Input(shape=(n_features,))])
    if feature_norm is not None:
        model.add(feature_norm)
    for kind, args in layers:
        if kind == "dense":
            model.add(Dense(int(args[0]), activation=args[1] if len(args) > 1 else None))
        elif kind == "dropout":
            model.add(Dropout(float(args[0])))
        elif kind == "batchnorm":
            model.add(BatchNormalization())
        else:
            model.add(Activation(args[0]))
    if target_stats is not None:
        mean, variance = target_stats
        model.add(Normalization(mean=mean, variance=variance, invert=True))
    return model


_CROSS_ENTROPY = {
    "binary_crossentropy": "binary",
    "bce": "binary",
    "binary_focal_crossentropy": "binary",
    "sparse_categorical_crossentropy": "multiclass",
    "categorical_crossentropy": "one-hot",
    "cce": "one-hot",
    "categorical_focal_crossentropy": "one-hot",
}


def choose_head(settings: Any, spec: Any) -> tuple[str, str, list[str], int]:
    """The `--model` layers, loss, metrics and output width for the run's target.

    Without `--model`, the default hidden layers get the output the target
    calls for: `dense:1` (regression), `dense:1:sigmoid` (two classes) or
    `dense:K:softmax` (K classes); without `--loss`, mse, binary or sparse
    categorical cross-entropy; a classifier reports accuracy. A loss that
    does not fit the output or the target is refused here, before training.
    """
    from batchfit.cli.settings import DEFAULT_HIDDEN

    task, classes = spec.task, len(spec.classes)
    outputs = len(spec.targets) if task == "regression" else 1 if task == "binary" else classes
    head = {
        "regression": f"dense:{outputs}",
        "binary": "dense:1:sigmoid",
        "multiclass": f"dense:{classes}:softmax",
    }[task]
    layers = settings.model or f"{DEFAULT_HIDDEN},{head}"
    default_loss = {
        "regression": "mse",
        "binary": "binary_crossentropy",
        "multiclass": "sparse_categorical_crossentropy",
    }[task]
    loss = (settings.loss or default_loss).lower()
    metrics = list(settings.metrics)
    if task != "regression" and not metrics:
        metrics = ["accuracy"]
    parsed = parse_model_spec(layers)
    final = _final_activation(parsed)
    wants = _CROSS_ENTROPY.get(loss)
    labels = f"{classes} classes ({', '.join(spec.classes[:5])}{', ...' if classes > 5 else ''})"
    if task == "regression" and wants is not None:
        raise CliError(
            f"--loss {loss}: the target {', '.join(spec.targets)} is a number (regression); "
            "cross-entropy needs labels. Use a regression loss (mse, mae, huber) or "
            "--task classification"
        )
    if task != "regression" and wants is None:
        raise CliError(
            f"--loss {loss}: the target is labels, {labels}; use {default_loss} "
            "(or --task regression to predict it as a number)"
        )
    if wants == "one-hot":
        raise CliError(
            f"--loss {loss} expects one-hot targets; the command encodes labels as class "
            "indices: use sparse_categorical_crossentropy"
        )
    if wants == "binary" and (task != "binary" or final != "sigmoid"):
        raise CliError(
            f"--loss {loss} needs two classes and an output in [0, 1] "
            f"(--model ending in dense:1:sigmoid); the target has {labels} "
            f"and --model ends with activation {final!r}"
        )
    if wants == "multiclass" and final != "softmax":
        raise CliError(
            f"--loss {loss} needs class probabilities: --model must end with "
            f"dense:{classes}:softmax, not activation {final!r}"
        )
    if task != "regression" and wants == "multiclass":
        outputs = classes
    return layers, loss, metrics, outputs


def _final_activation(layers: list[tuple[str, list[str]]]) -> str:
    for kind, args in reversed(layers):
        if kind == "activation":
            return args[0].lower()
        if kind == "dense":
            return args[1].lower() if len(args) > 1 else "linear"
    return "linear"
