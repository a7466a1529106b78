#!/usr/bin/env bash
# Installs ONNX Runtime (the pinned version) into the project-local .ort/ folder,
# where the trainer finds it without ORT_DYLIB_PATH.
#   scripts/install-ort.sh          CPU build   -> .ort/cpu
#   scripts/install-ort.sh --gpu    CUDA 13 build (onnxruntime-gpu) -> .ort/gpu, with
#                                   CUDA 13 / cuDNN 9 runtime libraries from pip (the
#                                   trainer preloads them); --gpu --system-cuda skips those
# A wheel already downloaded can be used offline: ORT_WHEEL_DIR=/path/to/wheels.
set -euo pipefail

ORT_VERSION=1.31.1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

package=onnxruntime
target="$root/.ort/cpu"
cuda_libs=()
case "${1:-}" in
  "") ;;
  --gpu)
    package=onnxruntime-gpu
    target="$root/.ort/gpu"
    if [[ "${2:-}" != "--system-cuda" ]]; then
      # The wheel's `cuda` and `cudnn` extras, plus cuBLAS, which the CUDA provider links.
      cuda_libs=("nvidia-cuda-runtime~=13.0" "nvidia-cublas~=13.0" "nvidia-cuda-nvrtc~=13.0"
                 "nvidia-cufft~=12.0" "nvidia-curand~=10.0" "nvidia-cudnn-cu13~=9.0")
    fi
    ;;
  *) echo "usage: $0 [--gpu [--system-cuda]]" >&2; exit 2 ;;
esac

lib_glob="$target/onnxruntime/capi/libonnxruntime.so*"
if compgen -G "$lib_glob" >/dev/null && \
   grep -qs "^Version: $ORT_VERSION\$" "$target"/onnxruntime*.dist-info/METADATA && \
   { ((${#cuda_libs[@]} == 0)) || [[ -d "$target/nvidia" ]]; }; then
  echo "$package $ORT_VERSION already in $target"
  exit 0
fi

pip_args=(--disable-pip-version-check --no-input --upgrade --no-deps --target "$target")
if [[ -n "${ORT_WHEEL_DIR:-}" ]]; then
  pip_args+=(--no-index --find-links "$ORT_WHEEL_DIR")
fi
rm -rf "$target"
python3 -m pip install "${pip_args[@]}" "$package==$ORT_VERSION"
if ((${#cuda_libs[@]})); then
  # Dependencies allowed here: they are the other nvidia-* library packages only.
  python3 -m pip install --disable-pip-version-check --no-input --target "$target/cuda-deps" \
    "${cuda_libs[@]}"
  cp -a "$target/cuda-deps/nvidia" "$target/"
  rm -rf "$target/cuda-deps"
fi

lib="$(compgen -G "$lib_glob" | head -n1 || true)"
if [[ -z "$lib" ]]; then
  echo "error: $package installed into $target but no libonnxruntime.so was found there" >&2
  exit 1
fi
echo "installed $package $ORT_VERSION: $lib"
