#!/usr/bin/env bash
# Installs Keras (tensorflow-cpu, the pinned version) into the project-local,
# git-ignored .bench-venv/ unless it is there already, and prints the version.
# Only the comparisons with Keras (bench-training.sh, accuracy-vs-keras.sh) use it.
#   TF_VERSION="$(scripts/install-keras.sh)"
set -euo pipefail

TF_VERSION=2.21.0
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.bench-venv"

if ! "$venv/bin/python" -c "import sys, tensorflow as tf; sys.exit(tf.__version__ != '$TF_VERSION')" \
    2>/dev/null; then
  echo "installing tensorflow-cpu $TF_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --no-input -q "tensorflow-cpu==$TF_VERSION" >&2
fi
echo "$TF_VERSION"
