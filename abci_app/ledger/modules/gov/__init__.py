"""Operator governance: proposals pass with more than 2/3 of operator voting power.

Two kinds: ``params`` (parameter changes) and ``validator`` (add a DSO/LPD
operator with its validator, remove a validator, change its power). A passed
validator proposal takes effect through ``validator_updates`` of the block's
FinalizeBlock; CometBFT applies them from height H+2.

A proposal is open for ``voting_period_s`` seconds of block time. Each operator
votes once, with the power it has when it votes. The proposal passes (and takes
effect in the same transaction) as soon as approving power exceeds 2/3 of the
total operator power; it is rejected once opposing power reaches 1/3 (it can no
longer pass); it expires at the first block at or after its end time.
"""

# The messages are the module's public API for clients (the CLI, tools, tests).
from abci_app.ledger.modules.gov.msgs import CastVote, ProposeParams, ProposeValidator
from abci_app.ledger.modules.gov.records import ParamChange, ValidatorChange

__all__ = ["CastVote", "ParamChange", "ProposeParams", "ProposeValidator", "ValidatorChange"]
