"""Hooks: the app's own Python code around Bastion's record writes and reads."""
