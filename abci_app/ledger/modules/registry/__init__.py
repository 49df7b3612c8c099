"""Identities: a DSO registers the participants and meters of its grid zones, and deactivates them."""

# The messages are the module's public API for clients (the CLI, tools, tests).
from abci_app.ledger.modules.registry.msgs import Deactivate, RegisterMeter, RegisterParticipant

__all__ = ["Deactivate", "RegisterMeter", "RegisterParticipant"]
