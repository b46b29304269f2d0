"""Records: reading and writing them, filters and rules over them, cursors, expand, aggregates, batch."""
