"""How much slower than a plain build the binary under test runs.

Every wait and socket timeout in the specs goes through scaled() so that one
set of numbers works for the plain, ASan and valgrind runs. Timeouts that a
spec wants the *gateway* to hit are not scaled: they are the behaviour under
test, and the waits around them are.
"""

import os


def factor():
    if os.environ.get("SLUICE_VALGRIND") == "1":
        return 20.0
    if os.environ.get("SLUICE_SANITIZED") == "1":
        return 3.0
    return 1.0


def scaled(seconds):
    return seconds * factor()


def under_valgrind():
    return os.environ.get("SLUICE_VALGRIND") == "1"


def sanitized():
    return os.environ.get("SLUICE_SANITIZED") == "1"
