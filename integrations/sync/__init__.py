"""The streaming sync engine: read ahead, prepare pages (in worker processes), commit in groups."""
