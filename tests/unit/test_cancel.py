"""Cooperative cancellation: checkpoints raise only inside a cancellable block."""

import pytest

from core.cancel import cancellable, checkpoint
from core.engine import Engine


class Stop(Exception):
    pass


def _stop() -> None:
    raise Stop


def test_checkpoint_is_silent_without_a_check() -> None:
    checkpoint()


def test_checkpoint_raises_inside_and_not_after_the_block() -> None:
    with pytest.raises(Stop):
        with cancellable(_stop):
            checkpoint()
    checkpoint()


def test_an_evaluation_stops_at_its_first_checkpoint_and_the_engine_still_answers() -> None:
    engine = Engine(clock=lambda: 1_700_000_000_000)
    engine.upsert_contacts([{"email": f"c{i}@example.com"} for i in range(5)])
    engine.ingest([{"eventTypeKey": "login", "params": {"email": f"c{i}@example.com"}} for i in range(5)])
    definition = {"condition": {"event": {"type": "login"}}}
    with pytest.raises(Stop):
        with cancellable(_stop):
            engine.evaluate(definition)
    assert len(engine.evaluate(definition)) == 5
