"""What processes share: locks, the rate limiter, run events, the run queue and run requests.

Each part is a small port with an in-process adapter (embedded mode) and a
Redis one (distributed mode), chosen once by :mod:`service.core`.
"""
