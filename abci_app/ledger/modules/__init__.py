"""Message families: each module holds its messages, their checks and their handlers."""
