"""Runs: the pipeline that streams a segment to a destination, and what carries it.

Everything here takes a :class:`~service.runs.context.RunContext` (built once by
:mod:`service.core`), never the whole service container.

- :mod:`service.runs.context`: what runs work with (parts and settings).
- :mod:`service.runs.lifecycle`: start or resume a run, carry it, end it.
- :mod:`service.runs.stages`: read, map, batch and upload, overlapping.
- :mod:`service.runs.committer`: apply batches in order, follow receipts.
- :mod:`service.runs.state` / :mod:`service.runs.checkpoint`: the committed
  counts and the typed checkpoint (where a resumed run continues).
- :mod:`service.runs.mapping`: field mapping, validation, de-duplication.
- :mod:`service.runs.jobs`: the job (retries, the inline loop) and the tick.
- :mod:`service.runs.recovery`: the heartbeat rule and the recovery sweep.
- :mod:`service.runs.schedule`: due times and the tick.
- :mod:`service.runs.embedded`: jobs and the tick inside ``segport serve``.
- :mod:`service.runs.notify`: the failure webhook.
- :mod:`service.runs.client`: ``segport run``, a GraphQL client.

Requests and cancellation (:mod:`service.coordination.run_requests`), the
queue (:mod:`service.coordination.queue`) and run events
(:mod:`service.coordination.events`) live below, in coordination; the arq
worker (:mod:`service.worker`) above, with the entry points.
"""
