"""``segport worker`` for the Mailchimp tests: the real :func:`run_worker`, with the Mailchimp
plugin pointed at the fake by ``SEGPORT_MAILCHIMP_*`` and batches of
``TEST_BATCH_MAX_RECORDS`` members so a run takes many calls."""

from __future__ import annotations

import os
from dataclasses import replace

from segport_mailchimp import Mailchimp, MailchimpSettings

from service.settings import Settings
from service.worker import run_worker
from tests.mailchimp.mc_world import MailchimpPlugin


def main() -> None:
    destination = Mailchimp(MailchimpSettings())
    destination.limits = replace(
        destination.limits, batch_max_records=int(os.environ["TEST_BATCH_MAX_RECORDS"])
    )
    run_worker(Settings(), extra_plugins=[MailchimpPlugin(destination)], load_entry_points=False)


if __name__ == "__main__":
    main()
