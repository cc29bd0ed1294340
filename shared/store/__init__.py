"""Storage and queueing: database models and sessions, job services, publishing to the broker."""
