"""segport's Mailchimp destination (Marketing API 3.0) and a fake Mailchimp.

The destination is registered through the ``segport.destinations`` entry point
(:mod:`segport_mailchimp.plugin`); :mod:`segport_mailchimp.fake` stands in for
Mailchimp's API in tests, demos and benchmarks.
"""

from segport_mailchimp.destination import Mailchimp
from segport_mailchimp.settings import MailchimpSettings

__all__ = ["Mailchimp", "MailchimpSettings"]
