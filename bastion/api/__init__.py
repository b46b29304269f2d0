"""HTTP: parse, call a core service, serialise. One module per resource."""
