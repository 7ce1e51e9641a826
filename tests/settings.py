"""Settings for the test suite: the real ones, with a fast password hash.

Argon2's deliberate cost (tens of milliseconds) is measured in bench/, not paid
hundreds of times here.
"""

import os

from batchline.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TESTING = True

# The suite's installations are seeded with the station control (21 CFR 11.10(h)) off: hundreds of
# tests act as people at terminals that are no registered station, and registering one in each
# would test the set-up, not their subject. tests/equipment/test_stations.py switches it on with a
# configuration version, as a site does; a new installation is seeded with it on.
os.environ.setdefault("BATCHLINE_REGISTERED_STATIONS_ONLY", "off")

# Delivery right after commit runs in a thread of its own: in the suite a test drives the deliverer
# itself, so that no thread writes delivery attempts behind a test's back (or into the next test's
# database). tests/quality/test_qms.py switches it on to show it.
OUTBOX_DELIVER_ON_COMMIT = False
