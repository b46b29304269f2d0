"""The domain: collections, fields, records, auth, migrations and the ports they use."""
