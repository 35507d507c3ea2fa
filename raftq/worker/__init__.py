"""The worker runtime: claims, runs, heartbeats and completes tasks over ``raftq.client``."""
