"""segport's Constant Contact destination (V3 API) and a fake Constant Contact server.

The destination is registered through the ``segport.destinations`` entry point
(:mod:`segport_constant_contact.plugin`); :mod:`segport_constant_contact.fake`
is a local stand-in for Constant Contact's OAuth and API hosts.
"""

from segport_constant_contact.destination import ConstantContact
from segport_constant_contact.settings import ConstantContactSettings

__all__ = ["ConstantContact", "ConstantContactSettings"]
