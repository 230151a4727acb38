"""Private MIMI contact discovery: DNS for the providers, then each provider
through an Oblivious HTTP relay. The Rust client library, through UniFFI.

Everything is the generated bindings (``_ffi``) but one thing: at interpreter
exit, every discoverer's threads are stopped, and waited for, before Python
finalizes. A discoverer's thread that calls into Python while it finalizes
(a lookup finishing, a batch's listener) would otherwise abort the process.
"""

import atexit as _atexit

from ._ffi import mimi_discovery as _generated
from ._ffi.mimi_discovery import *  # noqa: F401,F403 (the generated API)
from ._ffi.mimi_discovery import shutdown_all_discoverers as _shutdown_all_discoverers

__all__ = list(_generated.__all__)

# Long enough for a thread inside a listener to finish its call; the
# discoverers' own work stops at once.
_EXIT_WAIT_MS = 5_000


@_atexit.register
def _stop_discoverer_threads():
    _shutdown_all_discoverers(_EXIT_WAIT_MS)
