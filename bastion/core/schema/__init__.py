"""Collections and their storage: definitions, the registry and its cache, tables, DDL, views, migrations."""
