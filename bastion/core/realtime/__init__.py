"""Realtime: PocketBase's subscriptions, fed by committed changes from every process."""
