"""Where reports come from: the supervised neuron-monitor child, line framing, ``--input`` and its config.

Each source hands complete report lines to the ingest step; none of them parses a report itself.
"""
