"""Uploaded files: where they live (``ports.FileStorage``) and moving them between storages."""
