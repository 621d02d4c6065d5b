"""Agency clients: the retrying HTTP transport, the typed error tree, one client for all."""
