"""Open-loop load generation: load accounts, workloads, transports, the sender, statistics, the ceiling probe."""


class LoadSetupError(ValueError):
    """A load cannot be set up as asked: bad settings or mix, or a chain without the load accounts."""
