"""policies: the rule engine, policy packs and the tamper-evident audit log.

The lowest package: it imports no other provkit package, and it also holds the
toolkit's shared foundations (``errors``, ``workspace``, ``options``).
"""
