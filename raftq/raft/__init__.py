"""The PySyncObj adapter: the replica, its event-loop integration, the peer-message cipher."""
