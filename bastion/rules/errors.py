"""The one error type of the rule language."""

from __future__ import annotations


class FilterError(ValueError):
    """A filter, rule or sort expression that cannot be parsed or compiled.

    ``message`` is a complete, human-readable sentence fragment (it already names the
    position when one is known); ``position`` is the 0-based character offset in the
    source text where the problem was found, or ``None`` when it is not tied to one
    place (for example an error raised by a field resolver before the compiler adds
    the identifier's position).
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def at(self, position: int, subject: str) -> FilterError:
        """Return this error anchored at ``position``, unless it already has one.

        ``subject`` names what was being processed there, e.g. ``'"author.name"'``.
        """
        if self.position is not None:
            return self
        return FilterError(f"Invalid {subject} at position {position}: {self.message}", position)
