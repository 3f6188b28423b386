"""`--model` specs: `"dense:64:relu,dropout:0.1,dense:1"` parsed, checked and built."""

from __future__ import annotations

from typing import Any

from batchfit.cli.errors import CliError

__all__ = ["build_model", "parse_model_spec"]


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
            f"--model: the last dense layer has {dense_units[-1]} units but there "
            f"{'is' if n_targets == 1 else 'are'} {n_targets} target column(s)"
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
