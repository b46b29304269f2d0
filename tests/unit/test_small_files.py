"""The files service's copy of recently served small files: bounded by bytes, newest kept."""

from bastion.core.files.service import SmallFiles
from bastion.core.ports import StoredFile


def _stored(key: str, size: int) -> StoredFile:
    return StoredFile(key, size, 0.0, "", "e")


def test_the_oldest_go_first_and_the_budget_holds() -> None:
    small = SmallFiles(budget=1600)
    for name in "abcd":
        small.keep(name, _stored(name, 100), b"x" * 100)
    assert small.get("a") is not None  # now the newest
    for name in "efghijklmnopq":
        small.keep(name, _stored(name, 100), b"x" * 100)
    assert small.get("a") is not None or small.get("b") is None
    assert small.get("b") is None and small.get("q") is not None
    assert sum(len(small.get(k)[1]) for k in "abcdefghijklmnopq" if small.get(k)) <= 1600  # type: ignore[index]


def test_a_file_larger_than_a_sixteenth_of_the_budget_is_not_kept() -> None:
    small = SmallFiles(budget=1600)
    small.keep("big", _stored("big", 101), b"x" * 101)
    assert small.get("big") is None
