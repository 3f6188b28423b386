"""Bad flags, files and columns: one line on stderr naming them, exit code 2 (usage) or 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import run_cli


def check_one_line(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "error:" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["fit", "x.csv", "--epoch", "3"], ["--epoch"]),
        (["fit", "x.csv", "--epochs", "three"], ["--epochs", "three"]),
        (["predict", "run", "x.csv"], ["--output"]),
        (["demo", "--rows", "0"], ["--rows"]),
        (["train"], ["train"]),
    ],
)
def test_usage_errors_exit_2(args: list[str], needles: list[str]) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    check_one_line(done.stderr, *needles)


def test_failures_exit_1(datadir: Path, tmp_path: Path) -> None:
    csv = str(datadir / "part-0.csv")
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text("size,rooms,price\n1,2,3\n4,oops,6\n" + "7,8,9\n" * 10)
    text_column = tmp_path / "text.csv"
    text_column.write_text("size,city,price\n" + "1,Paris,3\n" * 20)
    bad_toml = tmp_path / "run.toml"
    bad_toml.write_text("epochs = 2\nbatchsize = 64\n")
    base = ["--out", str(tmp_path / "out"), "--quiet"]
    cases: list[tuple[list[str], list[str]]] = [
        (["fit", str(tmp_path / "missing.csv"), "--target", "price", *base], ["missing.csv"]),
        (["fit", csv, "--target", "prize", *base], ["--target", "prize"]),
        (["fit", csv, "--target", "price", "--features", "size,colour", *base], ["colour"]),
        (
            ["fit", csv, "--target", "price", "--model", "dense:64:relu,dens:1", *base],
            ["--model", "dens:1"],
        ),
        (
            ["fit", csv, "--target", "price", "--model", "dense:4,dense:2", *base],
            ["--model", "2 units"],
        ),
        (
            ["fit", csv, "--target", "price", "--loss", "mean_squared", *base],
            ["--loss", "mean_squared"],
        ),
        (
            ["fit", csv, "--target", "price", "--validation-split", "1.5", *base],
            ["--validation-split"],
        ),
        (
            ["fit", csv, "--config", str(bad_toml), "--target", "price", *base],
            ["batchsize", "run.toml"],
        ),
        (["fit", csv, *base], ["--target"]),
        (["fit", str(bad_row), "--target", "price", *base], ["bad.csv line 3", "rooms", "oops"]),
        (["fit", str(text_column), "--target", "price", *base], ["--target", "one value"]),
        (["fit", str(tmp_path / "notes.txt"), "--target", "price", *base], ["notes.txt"]),
        (["evaluate", str(tmp_path), csv], ["run.json", str(tmp_path)]),
    ]
    (tmp_path / "notes.txt").write_text("hello\n")
    for i, (args, needles) in enumerate(cases):
        args = [str(tmp_path / f"out-{i}") if a == base[1] else a for a in args]
        done = run_cli(*args)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith("batchfit: error: "), done.stderr
        check_one_line(done.stderr, *needles)
