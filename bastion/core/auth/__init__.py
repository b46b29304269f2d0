"""Signing in and staying signed in: tokens, passwords, flows, MFA, OAuth2, API keys, lockouts."""
