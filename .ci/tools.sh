#!/usr/bin/env bash
# Programs the test suite runs besides Python, from Debian's packages. Idempotent and quiet: installs (as root,
# as CI runs) only what is missing.
#   curl, jq   the README's shell examples call the API with curl and pick values out of its answers with jq;
#              tests/docs/test_readme_tour.py runs those examples as written
#   chromium   tests/api/test_docs_offline.py renders the Swagger UI page in it (driven by Playwright,
#              a dev dependency) with every host but the server cut off
set -eu
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
fi
echo "tools: $(curl --version | head -n 1 | cut -d' ' -f1-2), $(jq --version), $(/usr/bin/chromium --version 2>/dev/null)"
