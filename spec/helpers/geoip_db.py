"""MaxMind DB files for the geoip specs, written at test time by
write_mmdb.pl (Debian's libmaxmind-db-writer-perl).

    from geoip_db import write_db, Net

    write_db(tmp_path / "geo.mmdb", [
        Net("198.51.100.0/24", country="DE", continent="EU", asn=64500, asn_org="Example Net"),
        Net("2001:db8:1::/48", country="JP", continent="AS"),
    ])

A database is replaced atomically (written next to the target, then
renamed), as an operator must do: the gateway maps the file, and rewriting
it in place under a running gateway would change (or truncate) the pages
it reads.
"""

import json
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().with_name("write_mmdb.pl")


def Net(network, *, country=None, continent=None, asn=None, asn_org=None, registered_country=None):
    rec = {"network": network}
    for key, value in (("country", country), ("continent", continent), ("asn", asn),
                       ("asn_org", asn_org), ("registered_country", registered_country)):
        if value is not None:
            rec[key] = value
    return rec


def write_db(path, networks, *, database_type="GeoIP2-Country", ip_version=6):
    """Writes the database to path (atomically) and returns path."""
    path = Path(path)
    spec = path.with_name(path.name + ".spec.json")
    tmp = path.with_name(path.name + ".tmp")
    spec.write_text(json.dumps({"database_type": database_type, "ip_version": ip_version,
                                "networks": list(networks)}))
    proc = subprocess.run(["perl", str(SCRIPT), str(spec), str(tmp)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError("write_mmdb.pl failed (%d): %s" % (proc.returncode, proc.stderr))
    os.replace(tmp, path)
    spec.unlink()
    return path
