"""The hub's store: engine, migrations, tables, bulk writes, cursors, quarantine, handoffs."""
