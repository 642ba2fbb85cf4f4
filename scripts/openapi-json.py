#!/usr/bin/python3
"""openapi-json.py SRC.yaml OUT.json - the build step that turns docs/openapi.yaml (the one
source) into the compact JSON that `keyward serve` embeds and serves at /v1/openapi.json.
Needs python3-yaml (scripts/deps.sh)."""
import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    doc = yaml.safe_load(f)
if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
    sys.exit("openapi-json.py: %s is not an OpenAPI 3.1 document" % sys.argv[1])
with open(sys.argv[2] + ".tmp", "w", encoding="utf-8") as f:
    json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
import os  # noqa: E402
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
