"""Fixtures the attack tests share with the API suite."""

from tests.api.test_auth_flows import inbox  # noqa: F401 - a fixture: an SMTP server catching mail
