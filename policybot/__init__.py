"""The composition root: the command line and ``policybot run``, which start the channels.

Imports go one way: ``policybot`` -> ``handlers`` (channel adapters) -> ``bot`` (the core) -> ``knowledge``.
"""
