"""Secrets sealed at rest with AES-256-GCM: round trip, binding, tampering, wrong keys."""

from __future__ import annotations

import pytest

from bastion.core.auth.secretbox import PREFIX, SecretBox, SecretBoxError

KEY = "k" * 32


def test_sealed_values_open_with_the_same_key_and_purpose():
    box = SecretBox(KEY)
    sealed = box.seal("JBSWY3DPEHPK3PXP", "totp-secret")
    assert sealed.startswith(PREFIX) and "JBSWY3DPEHPK3PXP" not in sealed
    assert box.seal("JBSWY3DPEHPK3PXP", "totp-secret") != sealed  # a fresh nonce each time
    assert box.open(sealed, "totp-secret") == "JBSWY3DPEHPK3PXP"
    assert SecretBox(KEY).open(sealed, "totp-secret") == "JBSWY3DPEHPK3PXP"  # after a restart
    with pytest.raises(SecretBoxError):
        box.open(sealed, "another-purpose")


def test_wrong_key_missing_key_and_tampering_are_refused():
    sealed = SecretBox(KEY).seal("secret", "totp-secret")
    with pytest.raises(SecretBoxError, match="not the key"):
        SecretBox("x" * 32).open(sealed, "totp-secret")
    with pytest.raises(SecretBoxError, match="no encryption key"):
        SecretBox().open(sealed, "totp-secret")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretBoxError):
        SecretBox(KEY).open(flipped, "totp-secret")
    with pytest.raises(SecretBoxError):
        SecretBox(KEY).open(PREFIX + "not base64!", "totp-secret")


def test_without_a_key_values_stay_as_they_are_and_plain_values_still_open():
    assert SecretBox().seal("plain", "totp-secret") == "plain"
    assert SecretBox(KEY).open("plain", "totp-secret") == "plain"  # stored before the key was set
    with pytest.raises(ValueError, match="at least 32"):
        SecretBox("short")
