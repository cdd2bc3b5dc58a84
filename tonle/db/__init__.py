"""The database schema, its migrations, and its upkeep (roll-ups, retention)."""
