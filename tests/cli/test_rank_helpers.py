"""The rank helpers the command uses, in one process (test_torchrun.py runs them on 2 ranks)."""

from __future__ import annotations

import pytest

from batchfit import distributed


def test_one_process_runs_each_helper_once_and_keeps_its_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[str] = []
    assert distributed.agree(lambda: calls.append("agree") or 1) == 1
    assert distributed.on_main(lambda: calls.append("on_main") or 2) == 2
    assert calls == ["agree", "on_main"]

    def fail() -> None:
        raise ValueError("column 'prize' not found")

    for helper in (distributed.agree, distributed.on_main):
        with pytest.raises(ValueError, match="prize"):
            helper(fail)
    assert distributed.sum_over_ranks(7) == 7 and distributed.sum_over_ranks(None) is None
    distributed.say("once")
    assert capsys.readouterr().out == "once\n"
