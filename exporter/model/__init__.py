"""The wire contract and the reducer: schema, report parsing with per-group containment, and State.

``advance(previous, report, now)`` is the only way state changes; collectors read State and nothing else.
"""
