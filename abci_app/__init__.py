"""gridledger's replicated state machine and the ABCI 2.0 server that carries it."""

from importlib import metadata


def version() -> str:
    """The installed gridledger package's version (``0+unknown`` when run from an uninstalled tree)."""
    try:
        return metadata.version("gridledger")
    except metadata.PackageNotFoundError:
        return "0+unknown"
