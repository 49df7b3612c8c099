"""Accounts: the identities that sign transactions and hold money (as Cosmos SDK's x/auth).

An account is created by a DSO's ``register_participant`` (registry), by a
passed validator proposal or at genesis (gov); its balances change through
the bank keeper. This module owns the ``Account`` record, its keys, the
accessors, the zone index of participants, its invariants and queries.
"""
