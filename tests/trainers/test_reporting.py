"""Numbers in reports as people write them, and reductions named against the protocol."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trainers.reporting import human, reduced_banner, reductions, seconds


@pytest.mark.parametrize(("value", "text"), [
    (11130.4, "11,130"), (11_130, "11,130"), (37.64, "37.6"), (0.006817, "0.00682"),
    (1.0, "1.00"), (0.0, "0"), (None, "-"), (float("nan"), "-"), (-2.5, "-2.50")])
def test_human_numbers_never_use_exponents(value: float | None, text: str) -> None:
    assert human(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.4213, "0.421 s"), (37.64, "37.6 s"), (750.0, "12.5 min"), (3 * 3600 + 360, "3.10 h")])
def test_durations_pick_their_unit(value: float, text: str) -> None:
    assert seconds(value) == text


@dataclass(frozen=True)
class Protocol:
    epochs: int = 100
    steps: int = 0
    M: tuple[int, ...] = (1, 2, 4)
    lr: float = 0.1


def test_reductions_name_each_cut_against_the_dataclass_default() -> None:
    cut = Protocol(epochs=2, steps=4, M=(1, 2), lr=0.5)
    assert reductions(cut, ("epochs", "steps", "M")) == [
        "epochs 2 (protocol 100)", "steps 4 (protocol all)", "M 1,2 (protocol 1,2,4)"]
    assert reductions(Protocol(), ("epochs", "steps", "M")) == []


def test_the_banner_says_stand_in_and_reduced_or_full() -> None:
    assert "reduced: epochs 2 (protocol 100)" in reduced_banner(["epochs 2 (protocol 100)"],
                                                                False)
    assert "stand-in (synthetic) data" in reduced_banner([], True)
    assert reduced_banner([], False).startswith("Protocol: the homework's full protocol")
