"""Keeping a spec's requests inside one rate window.

Fixed and sliding windows of rate-limit and ai-token-limit start on multiples
of their length since the Unix epoch, so a spec that counts requests against
one must not run across a boundary. away_from_window_end() waits past the next
boundary when it is near; it asserts nothing.
"""

import time

from scale import scaled

# The wait is as long as the margin at worst, so the margin must stay short of
# the per-test timeout (--timeout in spec/CMakeLists.txt). scaled() is sized
# for timeouts, not for how long a sequence takes: under valgrind it turned
# 20 s into 400 s and 60 s into 1200 s, a sleep as long as the whole valgrind
# ctest TIMEOUT, spent with redis-server up and no gateway started yet -- the
# "hang at the end" of CI. The sequences that follow take 2-8 s under valgrind.
MAX_MARGIN_S = 120.0


def margin_ms(window_ms, margin_s=20.0):
    """How close to a boundary counts as near. Never more than half the window:
    a margin as long as the window (a 1-minute window under ASan) would make
    every call wait for the boundary, and half a window is already far more
    time than a sequence takes."""
    return min(scaled(margin_s), MAX_MARGIN_S, window_ms / 2000) * 1000


def away_from_window_end(window_ms, margin_s=20.0):
    """Waits past the next epoch-aligned boundary of window_ms when it is
    closer than margin_s (scaled, see margin_ms), so the requests that follow
    share one window."""
    now_ms = int(time.time() * 1000)
    left_ms = window_ms - now_ms % window_ms
    if left_ms < margin_ms(window_ms, margin_s):
        time.sleep(left_ms / 1000 + 0.05)
