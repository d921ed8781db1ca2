#!/usr/bin/env bash
# System packages motif uses when they can be had: FluidSynth + a General MIDI soundfont (audio),
# Chromium + ChromeDriver (the studio's browser test). Installed only when we are root with apt;
# otherwise we say how, and motif falls back (plain synthesiser for audio).
set -u
need=()
command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${need[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/motif-apt.log 2>&1 \
    || { apt-get update -q >>/tmp/motif-apt.log 2>&1 \
         && apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/motif-apt.log 2>&1; } \
    || echo "setup: apt-get failed (see /tmp/motif-apt.log); audio falls back to a plain synthesiser"
else
  echo "setup: optional system packages missing: ${need[*]}"
  echo "       install them with: sudo apt-get install ${need[*]}"
fi
exit 0
