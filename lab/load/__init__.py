"""Open-loop load generation: load accounts, workloads, transports, the sender, statistics, the ceiling probe."""
