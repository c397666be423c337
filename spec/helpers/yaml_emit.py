"""Turns a Python dict into block-style YAML (the specs may use the standard
library only, so there is no PyYAML).

Strings are written plain when that cannot change their meaning, otherwise
double-quoted with JSON escapes (a JSON string is a valid YAML double-quoted
scalar). Numbers and booleans stay unquoted so typed keys see their type.
"""

import json
import re

_PLAIN = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_./:@%+=-]*$")
_LOOKS_TYPED = re.compile(
    r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|"
    r"true|false|True|False|TRUE|FALSE|yes|no|Yes|No|YES|NO|on|off|On|Off|ON|OFF|"
    r"y|n|Y|N|null|Null|NULL|~|\.inf|\.nan)$")


def scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and not _LOOKS_TYPED.match(v) and ": " not in v and not v.endswith(":"):
            return v
        return json.dumps(v)
    raise TypeError("cannot write %r as YAML" % (v,))


def _is_scalar(v):
    return not isinstance(v, (dict, list, tuple))


def _lines(obj, indent):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = scalar(str(k))
            if _is_scalar(v):
                out.append("%s%s: %s" % (pad, key, scalar(v)))
            elif len(v) == 0:
                out.append("%s%s: %s" % (pad, key, "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s:" % (pad, key))
                out.extend(_lines(v, indent + 2))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            if _is_scalar(item):
                out.append("%s- %s" % (pad, scalar(item)))
            elif len(item) == 0:
                out.append("%s- %s" % (pad, "{}" if isinstance(item, dict) else "[]"))
            elif isinstance(item, dict):
                inner = _lines(item, indent + 2)
                out.append("%s- %s" % (pad, inner[0][indent + 2:]))
                out.extend(inner[1:])
            else:
                out.append("%s- %s" % (pad, json.dumps(item)))
    else:
        out.append(pad + scalar(obj))
    return out


def to_yaml(obj):
    return "\n".join(_lines(obj, 0)) + "\n"
