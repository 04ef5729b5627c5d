"""Runs: the pipeline that streams a segment to a destination, and what carries it.

- :mod:`service.runs.pipeline`: read, map, batch, upload, confirm, checkpoint.
- :mod:`service.runs.coordinator`: the one way runs are requested and cancelled.
- :mod:`service.runs.queue` / :mod:`service.runs.worker`: jobs, in-process or arq.
- :mod:`service.runs.events`: live run changes for subscriptions.
- :mod:`service.runs.schedule`: due times and the tick.
"""
