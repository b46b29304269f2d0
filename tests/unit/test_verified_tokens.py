"""The verified-token memory: a token is accepted again only while it is unexpired and
its record's key is unchanged; anything else gets the full check."""

from __future__ import annotations

import time

import jwt

from bastion.core.auth import tokens

K1, K2 = "a" * 40, "b" * 40  # record tokenKey + collection secret, as long as real ones


def test_a_known_token_with_the_same_key_is_accepted_without_a_new_check(monkeypatch):
    memory = tokens.VerifiedTokens()
    token = tokens.sign({"id": "r1", "type": "auth"}, K1, 60)
    assert memory.verify(token, K1)
    calls = []
    monkeypatch.setattr(tokens, "verify", lambda *a: calls.append(a))
    assert memory.verify(token, K1)
    assert calls == []
    assert memory.claims(token)["id"] == "r1"


def test_a_changed_key_ends_a_known_token():
    memory = tokens.VerifiedTokens()
    token = tokens.sign({"id": "r1"}, K1, 60)
    assert memory.verify(token, K1)
    assert not memory.verify(token, K2)  # a password change or a new secret
    assert memory.verify(token, K1)  # still the token it always was


def test_an_expired_token_is_refused_even_when_known():
    memory = tokens.VerifiedTokens()
    token = jwt.encode({"id": "r1", "exp": int(time.time()) + 1}, K1, algorithm="HS256")
    assert memory.verify(token, K1)
    time.sleep(1.1)
    assert not memory.verify(token, K1)
    assert not memory.verify(token, K1)


def test_forged_and_malformed_tokens_are_not_remembered():
    memory = tokens.VerifiedTokens()
    forged = tokens.sign({"id": "r1"}, K2, 60)
    assert not memory.verify(forged, K1)
    assert not memory.verify(forged, K1)
    assert not memory.verify("not.a.token", K1)
    none_alg = jwt.encode({"id": "r1", "exp": int(time.time()) + 60}, None, algorithm="none")
    assert not memory.verify(none_alg, "")
    assert memory.claims(none_alg) is None


def test_the_memory_is_bounded():
    memory = tokens.VerifiedTokens(limit=3)
    issued = [tokens.sign({"id": f"r{i}"}, K1, 60) for i in range(5)]
    for token in issued:
        assert memory.verify(token, K1)
    assert len(memory._known) == 3
    assert list(memory._known) == issued[2:]
