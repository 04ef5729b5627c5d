"""Runs: the pipeline that streams a segment to a destination, and what carries it.

- :mod:`service.runs.pipeline`: read, map, batch, upload, confirm, checkpoint.
- :mod:`service.coordination.run_requests`: the one way runs are requested and cancelled.
- :mod:`service.coordination.queue` / :mod:`service.worker`: jobs, in-process or arq.
- :mod:`service.coordination.events`: live run changes for subscriptions.
- :mod:`service.runs.schedule`: due times and the tick.
"""
