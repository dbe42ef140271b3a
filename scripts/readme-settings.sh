#!/usr/bin/env bash
# Rewrites README.md's tables of target settings (between `<!-- settings: TYPE -->` and
# `<!-- /settings -->`) from what each built-in plugin declares. A test checks they agree.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace
python3 - <<'PY'
import re, subprocess
readme = open("README.md").read()
def table(match):
    kind = match.group(1)
    text = subprocess.run(["target/debug/xp", "computetarget", "settings", kind, "--markdown"],
                          check=True, capture_output=True, text=True).stdout
    return f"<!-- settings: {kind} -->\n{text}<!-- /settings -->"
updated = re.sub(r"<!-- settings: (\S+) -->\n.*?<!-- /settings -->", table, readme, flags=re.S)
if updated != readme:
    open("README.md", "w").write(updated)
    print("README.md: settings tables rewritten")
else:
    print("README.md: settings tables up to date")
PY
