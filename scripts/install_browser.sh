#!/usr/bin/env bash
# Install Debian's Chromium for the real-browser tests (tests/test_browser*.py) and the screenshots
# (scripts/shoot_*.py) when it is missing, and Debian's colour-emoji font (fonts-noto-color-emoji):
# without it, emoji in ad texts are empty boxes in headless screenshots (the font is optional: a failure
# to install it is reported, not fatal).
# Idempotent: installs only what is missing. Never downloads a browser through Playwright.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
install() {
  $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
    $SUDO apt-get update >/dev/null
    $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null
  }
}
if [ ! -x /usr/bin/chromium ]; then
  install chromium
  echo "chromium installed"
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
if ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; then
  if install fonts-noto-color-emoji; then echo "fonts-noto-color-emoji installed"
  else echo "fonts-noto-color-emoji not installed: emoji show as boxes in screenshots" >&2; fi
fi
