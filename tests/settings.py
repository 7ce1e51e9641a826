"""Settings for the test suite: the real ones, with a fast password hash.

Argon2's deliberate cost (tens of milliseconds) is measured in bench/, not paid
hundreds of times here.
"""

from batchline.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TESTING = True
