#!/usr/bin/env bash
# Command-line tools the test suite runs besides Python: curl and jq. The README's shell examples call the API
# with curl and pick values out of its JSON answers with jq, and tests/integration/test_readme_tour.py runs
# those examples as written. Idempotent and quiet: installs from Debian's packages (as root, as CI runs) only
# what is missing.
set -eu
missing=()
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
fi
echo "tools: $(jq --version), $(curl --version | head -n 1 | cut -d' ' -f1-2)"
