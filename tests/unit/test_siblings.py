"""The memory-mapped mark that worker processes announce schema changes with."""

from __future__ import annotations

from bastion.adapters.siblings import MappedSiblings, create_mark_file


def test_an_announcement_makes_every_other_sibling_stale(tmp_path) -> None:
    create_mark_file(tmp_path / "mark")
    a, b, c = (MappedSiblings(tmp_path / "mark") for _ in range(3))
    assert not any(s.stale() for s in (a, b, c))
    a.announce()
    assert not a.stale() and b.stale() and c.stale()
    mark = b.mark()
    b.caught_up(mark)
    assert not b.stale() and c.stale()
    for s in (a, b, c):
        s.close()


def test_a_pending_announcement_survives_an_own_one(tmp_path) -> None:
    """A sibling that announces before catching up with another's change stays stale:
    its own announcement must not hide the change it has not reloaded yet."""
    create_mark_file(tmp_path / "mark")
    a, b = MappedSiblings(tmp_path / "mark"), MappedSiblings(tmp_path / "mark")
    a.announce()
    b.announce()
    assert b.stale()  # still owes a reload for a's change
    assert a.stale()  # and a learns of b's
    b.caught_up(b.mark())
    assert not b.stale()
    a.close()
    b.close()
