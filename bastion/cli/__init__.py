"""The command line: the only place that wires config, adapters, the App and the server."""
