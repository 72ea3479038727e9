#!/usr/bin/env bash
# Command-line tools the test suite runs besides Python: jq (the README's shell examples extract values from
# JSON answers with it, and tests/integration/test_readme_tour.py runs those examples). Idempotent and quiet:
# installs from Debian's packages (as root, as CI runs) only what is missing.
set -eu
missing=()
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
fi
echo "jq: $(jq --version)"
