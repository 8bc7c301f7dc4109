"""The worker agent: leases analyses from an orchestrator and runs them with a ``Runner``."""
