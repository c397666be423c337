#!/usr/bin/env python3
"""The demo upstream for the quickstart: the scripted mock server the specs use
(spec/helpers/mock_upstream.py), on 127.0.0.1:9001 unless a port is given."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "helpers"))
from mock_upstream import MockUpstream  # noqa: E402

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
upstream = MockUpstream(name="demo", port=port)
if hasattr(upstream, "start"):
    upstream.start()
print(f"demo upstream on 127.0.0.1:{upstream.port}", flush=True)
while True:
    time.sleep(3600)
