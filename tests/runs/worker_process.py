"""``segport worker`` for tests: the real :func:`run_worker`, with the Constant Contact plugin
pointed at a fake (from the environment) and small requests so a run takes several."""

from __future__ import annotations

import os
from dataclasses import replace

from segport_constant_contact import ConstantContact, ConstantContactSettings

from service.settings import Settings
from service.worker import run_worker
from tests.runs.cc_world import ConstantContactPlugin


def main() -> None:
    destination = ConstantContact(ConstantContactSettings())
    destination.limits = replace(
        destination.limits,
        batch_max_records=int(os.environ["TEST_BATCH_MAX_RECORDS"]),
        requests_per_second=float(os.environ["TEST_REQUESTS_PER_SECOND"]),
    )
    run_worker(
        Settings(), extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    )


if __name__ == "__main__":
    main()
