"""The kernel every domain builds on: settings, the domain exception tree, the database helpers, the shared
store, bounded network reads, the city clock and working-day calendar, identifiers, pagination limits and the
daily-count registry.

It imports nothing of ours outside `core` and nothing of the web framework: domains and the composition
(`api`) import it, never the other way round (checked by the import-linter contracts in pyproject.toml).
"""
