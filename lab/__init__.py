"""Tooling around gridledger nodes: local networks, testnets, load generation, experiments, scenarios.

Nothing here runs in a production validator; it sits above ``node`` (which it
uses to run and reach nodes) and below ``cli`` (which is its shell).
"""
