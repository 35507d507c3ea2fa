"""``raftq bench``: load generation and figures against a local or given cluster."""
