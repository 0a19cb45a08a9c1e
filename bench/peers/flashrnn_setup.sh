#!/usr/bin/env bash
# Installs FlashRNN (PyPI `flashrnn`, the peer benchmarked by peers.py --with-flashrnn) from
# wheel files, without network, and patches its `gpu_info` helper for CUDA 13; then prints the
# environment to export. Nothing of FlashRNN is kept in this repository: the wheel is fetched
# beforehand (README: "FlashRNN") and the patch is applied to the installed copy.
#
# Usage:  eval "$(bash flashrnn_setup.sh WHEEL_DIR [TARGET_DIR])"
#   WHEEL_DIR   folder holding flashrnn-*.whl (and any other wheel to install with it)
#   TARGET_DIR  where to install (default /tmp/sprnn-flashrnn): TARGET_DIR/site is the package
#               folder (PYTHONPATH), TARGET_DIR/torch_extensions the JIT build cache
#               (TORCH_EXTENSIONS_DIR), so later runs on the same machine reuse the builds.
# PYTHON overrides python3; CUDA_HOME names the CUDA toolkit whose headers decide the patch.
#
# The patch: CUDA 13 removed fields from `cudaDeviceProp` (at least clockRate, deviceOverlap,
# kernelExecTimeoutEnabled, computeMode) that FlashRNN 1.0.8's gpu_info.cc copies into a dict,
# so its JIT build fails. Each statement `dict["F"] = prop.F;` is deleted for those four fields
# and for every other field gpu_info.cc reads that the toolkit's `struct cudaDeviceProp` does not
# declare (read from driver_types.h when it is found). The script fails if any such read is left.
# Informational messages go to stderr; stdout carries only the export lines.
set -euo pipefail
wheels=${1:?usage: flashrnn_setup.sh WHEEL_DIR [TARGET_DIR]}
target=${2:-/tmp/sprnn-flashrnn}
py=${PYTHON:-python3}
shopt -s nullglob
whl=("$wheels"/*.whl)
frnn=("$wheels"/flashrnn-*.whl)
if [ ${#frnn[@]} -eq 0 ]; then
  echo "flashrnn_setup: no flashrnn-*.whl in $wheels" >&2
  exit 1
fi
mkdir -p "$target"
"$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$target/site" "${whl[@]}" >&2
src="$target/site/flashrnn/flashrnn/gpu_info/gpu_info.cc"
if [ ! -f "$src" ]; then
  echo "flashrnn_setup: $src not found (not FlashRNN 1.0.x?)" >&2
  exit 1
fi

removed=(clockRate deviceOverlap kernelExecTimeoutEnabled computeMode)
# The toolkit's header: $CUDA_HOME, nvcc's folder, /usr/local/cuda.
header=
for inc in ${CUDA_HOME:+"$CUDA_HOME/include"} \
           "$(dirname "$(command -v nvcc 2>/dev/null || echo /nonexistent/bin/nvcc)")/../include" \
           /usr/local/cuda/include; do
  if [ -f "$inc/driver_types.h" ]; then header="$inc/driver_types.h"; break; fi
done
if [ -n "$header" ]; then
  # Field names declared in `struct ... cudaDeviceProp { ... };`.
  declared=$(sed -n '/^struct.*[[:space:]]cudaDeviceProp[[:space:]]*$/,/^}/p' "$header" \
    | sed -nE 's|^[^/]*[[:space:]*]([A-Za-z_][A-Za-z0-9_]*)(\[[^]]*\])*[[:space:]]*;.*|\1|p')
  if [ -n "$declared" ]; then
    for f in $(grep -oE 'prop\.[A-Za-z_][A-Za-z0-9_]*' "$src" | cut -d. -f2 | sort -u); do
      if ! grep -qx "$f" <<<"$declared"; then
        case " ${removed[*]} " in *" $f "*) ;; *) removed+=("$f") ;; esac
      fi
    done
  else
    echo "flashrnn_setup: no cudaDeviceProp in $header; removing the four known fields only" >&2
  fi
else
  echo "flashrnn_setup: driver_types.h not found; removing the four known fields only" >&2
fi
for f in "${removed[@]}"; do
  # -z: the whole file is one record, so a statement split over lines matches too.
  sed -z -E -i "s/dict\[\"$f\"\][[:space:]]*=[[:space:]]*prop\.$f[[:space:]]*;//g" "$src"
done
left=$(grep -nE "prop\.($(IFS='|'; echo "${removed[*]}"))([^A-Za-z0-9_]|$)" "$src" || true)
if [ -n "$left" ]; then
  echo "flashrnn_setup: could not remove every read of a removed field:" >&2
  echo "$left" >&2
  exit 1
fi
echo "flashrnn_setup: installed $(basename "${frnn[0]}") into $target/site; removed from gpu_info.cc: ${removed[*]}" >&2
printf 'export PYTHONPATH=%q\n' "$target/site${PYTHONPATH:+:$PYTHONPATH}"
printf 'export TORCH_EXTENSIONS_DIR=%q\n' "$target/torch_extensions"
