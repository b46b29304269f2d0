"""Cutting messages into frames and joining them, with the receiver's memory bounded."""

from __future__ import annotations

import logging
import os

import pytest

from bastion.adapters.bus_frames import HEADER, Framer, Joiner, check_channel


def joiner(**bounds: float) -> tuple[Joiner, list[bytes]]:
    got: list[bytes] = []
    return Joiner(got.append, **bounds), got  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 1000])
def test_frames_fit_the_limit_and_join_back(size: int) -> None:
    framer = Framer(HEADER.size + 100)
    message = os.urandom(size)
    frames = framer.frames(message)
    assert len(frames) == max(1, -(-size // 100))
    assert all(len(f) <= HEADER.size + 100 for f in frames)
    join, got = joiner()
    for frame in frames:
        join.feed(frame)
    assert got == [message] and join.pending == 0


def test_messages_of_several_publishers_interleave() -> None:
    a, b = Framer(HEADER.size + 10), Framer(HEADER.size + 10)
    fa, fb = a.frames(b"A" * 35), b.frames(b"B" * 25)
    join, got = joiner()
    for pair in zip(fa, [*fb, b""], strict=True):
        for frame in pair:
            if frame:
                join.feed(frame)
    assert got == [b"B" * 25, b"A" * 35]


def test_a_lost_part_drops_that_message_only(caplog: pytest.LogCaptureFixture) -> None:
    framer = Framer(HEADER.size + 10)
    first, second = framer.frames(b"1" * 30), framer.frames(b"2" * 30)
    join, got = joiner()
    with caplog.at_level(logging.WARNING, logger="bastion.bus"):
        for frame in [first[0], first[2], *second]:  # first[1] lost
            join.feed(frame)
    assert got == [b"2" * 30]
    assert "dropped an incomplete message" in caplog.text


def test_a_message_cut_short_is_dropped_when_the_next_begins(caplog: pytest.LogCaptureFixture) -> None:
    framer = Framer(HEADER.size + 10)
    first, second = framer.frames(b"1" * 30), framer.frames(b"2")
    join, got = joiner()
    with caplog.at_level(logging.WARNING, logger="bastion.bus"):
        for frame in [*first[:2], *second]:
            join.feed(frame)
    assert got == [b"2"] and join.pending == 0
    assert "1 of 3 parts" not in caplog.text and "2 of 3 parts" in caplog.text


def test_stray_parts_without_their_beginning_are_ignored() -> None:
    frames = Framer(HEADER.size + 10).frames(b"x" * 30)
    join, got = joiner()
    for frame in frames[1:]:
        join.feed(frame)
    assert got == [] and join.pending == 0


def test_incomplete_messages_expire(caplog: pytest.LogCaptureFixture) -> None:
    slow, other = Framer(HEADER.size + 10), Framer(HEADER.size + 10)
    join, got = joiner(timeout=0.0)
    with caplog.at_level(logging.WARNING, logger="bastion.bus"):
        join.feed(slow.frames(b"s" * 30)[0])
        join.feed(other.frames(b"o")[0])  # any later frame finds the first one expired
    assert got == [b"o"] and join.pending == 0
    assert "stopped arriving" in caplog.text


def test_too_many_incomplete_messages_drop_the_oldest(caplog: pytest.LogCaptureFixture) -> None:
    publishers = [Framer(HEADER.size + 10) for _ in range(4)]
    messages = [p.frames(bytes([65 + i]) * 20) for i, p in enumerate(publishers)]
    join, got = joiner(max_pending=2)
    with caplog.at_level(logging.WARNING, logger="bastion.bus"):
        for frames in messages:
            join.feed(frames[0])
        assert join.pending == 2
        for frames in messages:
            join.feed(frames[1])
    assert got == [b"C" * 20, b"D" * 20]
    assert caplog.text.count("too many incomplete messages") == 2


def test_pending_bytes_are_bounded() -> None:
    publishers = [Framer(HEADER.size + 100) for _ in range(3)]
    join, got = joiner(max_bytes=250)
    for publisher in publishers:
        join.feed(publisher.frames(os.urandom(300))[0])
    assert join.pending == 2  # 3 x 100 bytes held would pass 250


def test_a_frame_that_is_not_ours_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    join, got = joiner()
    bad_version = bytes([9]) + Framer(100).frames(b"x")[0][1:]
    bad_index = HEADER.pack(1, b"p" * 8, 1, 3, 3) + b"x"
    with caplog.at_level(logging.WARNING, logger="bastion.bus"):
        for frame in (b"", b"short", bad_version, bad_index):
            join.feed(frame)
    assert got == []
    assert caplog.text.count("not Bastion's") == 4


@pytest.mark.parametrize("name", ["bastion_events", "bastion_events-2", "A", "x" * 63])
def test_channel_names_that_every_transport_takes(name: str) -> None:
    assert check_channel(name) == name


@pytest.mark.parametrize("name", ["", "x" * 64, "a.b", "a b", "a*", "../up", "événements", 'q"uote'])
def test_channel_names_refused(name: str) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        check_channel(name)
