"""Tracking: the store a run goes to (`store`), what a run records about where it came from
(`lineage`), the logging calls of one run (`run`), how each call reaches the server
(`delivery`), and the journal that keeps calls while the server is unreachable (`journal`)."""
