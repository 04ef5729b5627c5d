"""How a run stops short of success: the exceptions the pipeline's parts raise and its
lifecycle turns into an outcome (or leaves resumable)."""

from __future__ import annotations

from service.domain import ExportRunStatus


class RunInterrupted(Exception):
    """The run stopped without an outcome (shutdown, transient trouble); it can resume."""


class RunStopped(RunInterrupted):
    """The process is stopping: the run committed what it had sent and was released, for
    another job to resume from its checkpoint."""


class TransientRunError(RunInterrupted):
    """Worth retrying later: the job layer retries with backoff, then fails the run."""


class RunCancelled(Exception):
    """The run was asked to stop (raised inside the pipeline's task group)."""


class RunFailed(Exception):
    """A permanent failure decided before or during the run; the message is the run's."""

    def __init__(self, message: str, status: ExportRunStatus = ExportRunStatus.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
