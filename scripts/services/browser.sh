# shellcheck shell=bash
# Browser component: Debian's chromium and chromium-driver, for the web view's browser tests
# (tests/tests/ui.rs start their own headless chromium through chromedriver on loopback ports).
# Nothing runs between tests, so there is nothing to stop; the packages stay installed.

XP_CHROMIUM=${XP_TEST_CHROMIUM:-/usr/bin/chromium}
XP_CHROMEDRIVER=${XP_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}
# A font with wide coverage, so screenshots show text rather than boxes.
XP_BROWSER_PACKAGES=(chromium chromium-driver fonts-dejavu-core)

browser_versions() {
  "$XP_CHROMIUM" --headless --no-sandbox --version 2>/dev/null | head -n1
  "$XP_CHROMEDRIVER" --version 2>/dev/null | head -n1
}

browser_start() {
  apt_ensure "${XP_BROWSER_PACKAGES[@]}"
  [ -x "$XP_CHROMIUM" ] || die "browser: $XP_CHROMIUM is missing after installing chromium"
  [ -x "$XP_CHROMEDRIVER" ] || die "browser: $XP_CHROMEDRIVER is missing after installing chromium-driver"
  local versions
  versions=$(browser_versions | tr '\n' ';')
  [ -n "$versions" ] || die "browser: $XP_CHROMIUM or $XP_CHROMEDRIVER does not run"
  log "browser: ready ($versions)"
}

browser_stop() {
  log "browser: nothing runs between tests; nothing to stop"
}

browser_status() {
  if [ -x "$XP_CHROMIUM" ] && [ -x "$XP_CHROMEDRIVER" ]; then
    echo "browser: UP ($(browser_versions | tr '\n' ';'))"
    return 0
  fi
  echo "browser: DOWN (chromium or chromedriver missing; scripts/services.sh start browser installs them)"
  return 1
}

browser_env() {
  env_line XP_TEST_CHROMIUM "$XP_CHROMIUM"
  env_line XP_TEST_CHROMEDRIVER "$XP_CHROMEDRIVER"
}
