"""The pure replicated state machine: model, commands, indexes, snapshot.

Nothing in this package reads a clock, makes an id, draws a random number or
does I/O; the contract is written at the top of ``raftq.state.machine``.
"""
