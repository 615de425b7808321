#!/usr/bin/env bash
# Installs code-server (a real VS Code: server + web workbench) from the npm registry into a
# cache folder, offline-safe, as ../shared/docs/VSCODE-TESTING.md describes. Its postinstall
# would download ripgrep from GitHub, so scripts are off and the steps are done by hand.
# Usage: scripts/install-code-server.sh [cache-dir]; prints the install root on stdout.
set -euo pipefail
VERSION="${CODE_SERVER_VERSION:-4.100.3}"
CACHE="${1:-${DRAG_CODE_SERVER_CACHE:-$HOME/.cache/drag-studio/code-server-$VERSION}}"
ROOT="$CACHE"
MARK="$ROOT/.installed-$VERSION"
if [ -f "$MARK" ]; then echo "$ROOT"; exit 0; fi
log() { echo "[install-code-server] $*" >&2; }
for tool in rg chromium; do
  command -v "$tool" >/dev/null || { log "missing $tool: apt-get install ripgrep chromium libkrb5-dev"; exit 1; }
done
mkdir -p "$ROOT"
cd "$ROOT"
[ -f package.json ] || echo '{"name":"code-server-cache","private":true}' > package.json
log "npm install code-server@$VERSION (scripts off)"
npm install "code-server@$VERSION" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
VS="$ROOT/node_modules/code-server/lib/vscode"
log "installing VS Code server dependencies"
(cd "$VS" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
log "rebuilding native modules"
(cd "$VS" && npm rebuild kerberos @parcel/watcher @vscode/spdlog native-watchdog @vscode/deviceid --loglevel=error >&2)
(cd "$VS" && npm_config_yes=true npm rebuild node-pty --loglevel=error >&2)
mkdir -p "$VS/node_modules/@vscode/ripgrep/bin"
cp "$(command -v rg)" "$VS/node_modules/@vscode/ripgrep/bin/rg"
[ -e "$VS/node_modules.asar" ] || ln -s node_modules "$VS/node_modules.asar"
log "installing built-in extensions' dependencies"
(cd "$VS/extensions" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
log "rebuilding argon2"
(cd "$ROOT" && npm rebuild argon2 --loglevel=error >&2)
[ -f "$ROOT/node_modules/argon2/lib/binding/napi-v3/argon2.node" ] || { log "argon2 did not build"; exit 1; }
touch "$MARK"
echo "$ROOT"
