"""Generic helpers that know nothing about records or HTTP."""
