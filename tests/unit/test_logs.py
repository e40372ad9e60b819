"""The repeat filter: aiokafka's retry noise collapsed, our own records untouched."""

from __future__ import annotations

import logging

import pytest

from shared.logs import RepeatFilter

pytestmark = pytest.mark.unit


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_the_same_library_message_passes_once_per_window_then_says_how_many_were_dropped() -> None:
    now = [0.0]
    f = RepeatFilter(window_s=30.0, clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    passed = []
    for second in range(0, 65):
        now[0] = float(second)
        for _ in range(10):  # ten a second, as aiokafka does while the broker is away
            r = record("aiokafka", template, 1, "refused")
            if f.filter(r):
                passed.append((second, r.getMessage()))
    assert [s for s, _ in passed] == [0, 30, 60]
    assert passed[0][1] == "Unable connect to node with id 1: refused"
    assert passed[1][1].endswith("[299 more like this in the last 30 s]")
    assert passed[2][1].endswith("[299 more like this in the last 30 s]")


def test_other_messages_levels_and_loggers_are_counted_apart_and_ours_are_never_dropped() -> None:
    f = RepeatFilter(window_s=30.0, clock=lambda: 0.0)
    assert f.filter(record("aiokafka.consumer.fetcher", "Failed fetch messages from %s", 1))
    assert f.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert f.filter(record("aiokafka", "Unable to update metadata from %s", [1], level=logging.WARNING))
    assert not f.filter(record("aiokafka", "Unable to update metadata from %s", [2]))  # same template
    for _ in range(3):
        assert f.filter(record("shared.messaging.relay", "relay: publish failed: %s", "x"))
        assert f.filter(record("activity.broker", "Received"))
