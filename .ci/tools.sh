#!/usr/bin/env bash
# Programs the test suite runs besides Python, from Debian's packages. Idempotent and quiet: installs (as root,
# as CI runs) only what is missing.
#   curl, jq   the README's shell examples call the API with curl and pick values out of its answers with jq;
#              tests/docs/test_readme_tour.py runs those examples as written
#   chromium   tests/api/test_docs_offline.py renders the Swagger UI page in it (driven by Playwright,
#              a dev dependency) with every host but the server cut off; tests/accounts/test_consent_browser.py
#              drives the consent page in it
#   fonts-wqy-microhei  a Chinese font for that browser: without one the consent page's screenshots (test
#              artifacts) show boxes where the text is
#   npm        fetches axe-core (the accessibility checker the consent page's browser test injects) from the npm
#              registry into .cache/axe-core/ (gitignored), once
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
fi
axe="$root/.cache/axe-core/node_modules/axe-core"
if [ ! -f "$axe/axe.min.js" ]; then
  npm install --silent --no-audit --no-fund --no-save --prefix "$root/.cache/axe-core" axe-core@4 >/dev/null
fi
echo "tools: $(curl --version | head -n 1 | cut -d' ' -f1-2), $(jq --version), $(/usr/bin/chromium --version 2>/dev/null), axe-core $(node -p "require('$axe/package.json').version")"
