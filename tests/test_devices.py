"""Where the maths runs, and the GPU memory cap a benchmark or test runs under."""

from __future__ import annotations

import pytest

from rvc.devices import MEMORY_CAP_VARIABLE, gpu_memory_cap_gib
from rvc.errors import UserError


def test_the_memory_cap_is_unset_by_default_and_read_in_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_CAP_VARIABLE, raising=False)
    assert gpu_memory_cap_gib() is None
    monkeypatch.setenv(MEMORY_CAP_VARIABLE, "7.5")
    assert gpu_memory_cap_gib() == 7.5


@pytest.mark.parametrize("text", ["eight", "0", "-2"])
def test_a_memory_cap_that_is_not_a_positive_number_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv(MEMORY_CAP_VARIABLE, text)
    with pytest.raises(UserError, match=MEMORY_CAP_VARIABLE):
        gpu_memory_cap_gib()
