"""raftq's chaos harness: real faults against real nodes, a recorded history,
and a checker's verdict. Run it with ``python -m chaos`` (see ``__main__``)."""
