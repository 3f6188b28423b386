"""`import batchfit as keras`: Keras' top level, loaded lazily, without import cycles."""

from __future__ import annotations

import subprocess
import sys

import pytest

import batchfit

PUBLIC_MODULES = list(batchfit._SUBMODULES)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_import_batchfit_does_not_load_torch() -> None:
    done = _run(
        "import sys, batchfit\n"
        "heavy = sorted(m for m in ('torch', 'polars', 'pyarrow', 'cv2') if m in sys.modules)\n"
        "print(heavy)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_light_modules_stay_light() -> None:
    # keras.config and keras.utils are read at the top of scripts; they need no torch
    done = _run(
        "import sys, batchfit as keras\n"
        "keras.config.floatx(); keras.utils.to_categorical([0, 1])\n"
        "print('torch' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_each_public_module_imports_first_in_a_fresh_interpreter(name: str) -> None:
    # imported first, a module meets its dependencies in a cold interpreter: an
    # import cycle or a missing attribute shows up here and not in a warm test run
    done = _run(
        f"import batchfit\n"
        f"import batchfit.{name} as direct\n"
        f"assert getattr(batchfit, {name!r}) is direct\n"
        f"for public in getattr(direct, '__all__', []):\n"
        f"    getattr(direct, public)\n"
    )
    assert done.returncode == 0, f"import batchfit.{name} failed:\n{done.stderr}"


def test_keras_top_level_names() -> None:
    import batchfit as keras
    from batchfit import constraints, layers, models

    assert keras.Sequential is models.Sequential
    assert keras.Model is models.Model
    assert keras.Input is layers.Input
    for name in batchfit.__all__:
        assert getattr(keras, name) is not None, name
    assert set(batchfit.__all__) <= set(dir(keras))
    assert keras.version() == keras.__version__
    assert keras.constraints.MaxNorm is constraints.MaxNorm  # keras.constraints (issue 13)


def test_from_import_spellings() -> None:
    from batchfit import backend as K
    from batchfit.layers import Dense
    from batchfit.models import Sequential

    assert K.image_data_format() == "channels_last"
    assert isinstance(Sequential([Dense(2, input_dim=3)], device="cpu"), Sequential)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Sequentail'"):
        _ = batchfit.Sequentail  # type: ignore[attr-defined]
    assert not hasattr(batchfit, "applications")  # not provided: hasattr must say so
