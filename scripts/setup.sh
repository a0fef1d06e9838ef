#!/usr/bin/env bash
# Create .venv (if needed) and install everything the library, the nodes and the tests need.
# torch 2.13.0 (CPU build) goes in first so that nothing pulls a CUDA build; torchvision never.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip_q() { python -m pip install -q --disable-pip-version-check "$@"; }
python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
  || pip_q torch==2.13.0
pip_q -r requirements.txt -c constraints.txt
pip_q -c constraints.txt "onnx>=1.16" "pytest>=8" "peft>=0.13" "torchao>=0.18"  # the dev extra: int8 weights are tested
pip_q --no-deps --no-build-isolation -e .
# Last, so no later resolver run complains that its opencv-python requirement is unmet.
pip_q --no-deps insightface==2.1
if python -c "import torchvision" 2>/dev/null; then
  echo "setup: torchvision is installed in .venv; it breaks diffusers/transformers with torch 2.13: pip uninstall torchvision" >&2
  exit 1
fi
