#!/usr/bin/env bash
# One-time set-up for a fresh machine; safe to run again (each step checks before it acts).
#   1. a Vulkan driver WebGPU can use: on Debian/Ubuntu with none, Mesa's CPU driver (lavapipe >= 24);
#   2. Bun, through npm, when it is missing;
#   3. the workspace dependencies (bun install);
#   4. Open MPI (data-parallel training with mpirun; its tests), on Debian/Ubuntu when missing;
#   5. Chromium (the browser example's test runs it headless), on Debian/Ubuntu when missing.
# Prints one line per step saying what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*"; }
sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

# --- 1. Vulkan ------------------------------------------------------------------------------------
icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null || true)
gpu_icds=$(printf '%s\n' $icds | grep -v -E 'lvp_icd|^$' || true)
mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
mesa_major=${mesa_version%%.*}; mesa_major=${mesa_major##*:}
if [ -n "$gpu_icds" ]; then
  say "Vulkan GPU driver present ($(printf '%s ' $gpu_icds))"
elif [ -n "$mesa_version" ] && [ "${mesa_major:-0}" -ge 24 ] 2>/dev/null; then
  say "Mesa lavapipe $mesa_version present"
elif command -v apt-get >/dev/null; then
  . /etc/os-release
  export DEBIAN_FRONTEND=noninteractive
  if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    # Debian 12's own Mesa (22.3) lacks features Dawn requires; bookworm-backports has 25.x.
    list=/etc/apt/sources.list.d/textcraftor-bookworm-backports.list
    grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ \
      || echo 'deb http://deb.debian.org/debian bookworm-backports main' | sudo_if_needed tee "$list" >/dev/null
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  say "installed Mesa Vulkan drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
else
  say "WARNING: no Vulkan driver found and no apt-get; install your GPU's Vulkan driver (or Mesa lavapipe >= 24)"
fi

# --- 2. Bun ---------------------------------------------------------------------------------------
BUN_VERSION=1.4.5
if command -v bun >/dev/null; then
  say "bun $(bun --version) present"
else
  if npm install -g --silent "bun@$BUN_VERSION" >/dev/null 2>&1; then
    say "installed bun $BUN_VERSION globally through npm"
  else
    npm install -g --silent --prefix "$HOME/.local" "bun@$BUN_VERSION" >/dev/null
    export PATH="$HOME/.local/bin:$PATH"
    say "installed bun $BUN_VERSION into ~/.local/bin through npm (add it to PATH)"
  fi
fi

# --- 3. Workspace dependencies ------------------------------------------------------------------------
bun install --frozen-lockfile >/dev/null 2>&1 || bun install >/dev/null
say "workspace dependencies installed ($(ls node_modules | wc -l) packages in node_modules)"

# --- 4. Open MPI ----------------------------------------------------------------------------------
if command -v mpirun >/dev/null && ldconfig -p 2>/dev/null | grep -q 'libmpi\.so'; then
  say "Open MPI present ($(mpirun --version 2>/dev/null | head -1))"
elif command -v apt-get >/dev/null; then
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 install -y -qq openmpi-bin libopenmpi3 >/dev/null 2>&1 ||
    { sudo_if_needed apt-get update -qq && sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 install -y -qq openmpi-bin libopenmpi3 >/dev/null; }
  say "installed Open MPI $(dpkg-query -W -f='${Version}' openmpi-bin)"
else
  say "WARNING: no Open MPI and no apt-get; install Open MPI for data-parallel training (mpirun)"
fi

# --- 5. Chromium ----------------------------------------------------------------------------------
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then
  say "Chromium present ($( (chromium --version || chromium-browser --version || google-chrome --version) 2>/dev/null | head -1))"
elif command -v apt-get >/dev/null; then
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null 2>&1 ||
    { sudo_if_needed apt-get update -qq && sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null; }
  say "installed Chromium $(dpkg-query -W -f='${Version}' chromium)"
else
  say "WARNING: no Chromium and no apt-get; install Chromium for the browser example's test (examples/browser-knob)"
fi
