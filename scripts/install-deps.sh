#!/usr/bin/env bash
# Installs the Debian packages quench needs to build and test (idempotent; needs root or sudo).
set -euo pipefail
PKGS=(build-essential cmake ninja-build ccache pkg-config
      nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev libxxhash-dev
      libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
      python3 python3-jinja2 curl nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# node/npm may come from outside Debian's packages (as on the project's machines): accept those.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Node packages used by the tests (tokenizer goldens' reference tokenizer, the OpenAI SDK client).
if [[ -f tests/node/package.json && ! -d tests/node/node_modules ]]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
