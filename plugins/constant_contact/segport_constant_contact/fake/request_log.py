"""The fake Constant Contact's record of every API request, and what tests measure on it."""

from __future__ import annotations

import threading

from segport_constant_contact.fake.records import LoggedRequest


class RequestLog:
    """Every request in arrival order, with the measures the limits are judged by."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.entries: list[LoggedRequest] = []

    def log(self, method: str, path: str, arrived: float, size: int, records: int | None,
            status: int) -> None:  # fmt: skip
        with self.lock:
            self.entries.append(LoggedRequest(method, path, arrived, size, records, status))

    def max_requests_in_window(self, seconds: float = 1.0, path_prefix: str = "/v3/") -> int:
        """Most API requests that arrived within any window of ``seconds``."""
        with self.lock:
            times = sorted(r.arrived for r in self.entries if r.path.startswith(path_prefix))
        most, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= seconds:
                start += 1
            most = max(most, end - start + 1)
        return most

    def largest_body(self) -> int:
        with self.lock:
            return max((r.body_bytes for r in self.entries), default=0)

    def most_records(self) -> int:
        with self.lock:
            return max((r.record_count or 0 for r in self.entries), default=0)
