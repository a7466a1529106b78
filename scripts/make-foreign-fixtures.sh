#!/usr/bin/env bash
# Rebuilds the foreign-model fixtures in tests/fixtures/foreign/: small PyTorch and
# Keras LSTM/GRU models exported to ONNX, with each framework's own outputs.
# Installs what it needs into throwaway virtual environments (PyTorch and
# TensorFlow live apart: their pinned numpy/protobuf needs differ).
#   scripts/make-foreign-fixtures.sh              both frameworks
#   scripts/make-foreign-fixtures.sh torch|keras  one of them
# VENV_ROOT (default /tmp/foreign-venv) picks where the environments go.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/tests/fixtures/foreign"
venv_root="${VENV_ROOT:-/tmp/foreign-venv}"

venv() {
  local dir="$1"; shift
  if [[ ! -x "$dir/bin/python" ]]; then
    python3 -m venv "$dir"
  fi
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
}

make_torch() {
  # The registry's torch wheel also pulls CUDA libraries; only the CPU is used.
  venv "$venv_root" "torch==2.15.0" "onnx==1.23.2" "numpy"
  "$venv_root/bin/python" "$root/scripts/make_foreign_fixtures.py" torch "$out"
}

make_keras() {
  venv "$venv_root-keras" "tensorflow-cpu==2.21.0" "tf-keras==2.21.0" "tf2onnx==1.17.0" "onnx==1.23.2"
  "$venv_root-keras/bin/python" "$root/scripts/make_foreign_fixtures.py" keras "$out"
}

case "${1:-all}" in
  torch) make_torch ;;
  keras) make_keras ;;
  all) make_torch; make_keras ;;
  *) echo "usage: $0 [torch|keras]" >&2; exit 2 ;;
esac
echo "fixtures written to $out"
