#!/usr/bin/env bash
# Create bench/.keras-venv with TensorFlow (CPU) and Keras 3 from PyPI.
# Installs nothing into the project's own environment. Re-running is a no-op once it works.
#
#   bash bench/keras_reference/setup_venv.sh            # default: tensorflow-cpu 2.21.0
#   TF_PACKAGE="tensorflow==2.20.0" bash bench/keras_reference/setup_venv.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${KERAS_VENV:-$here/../.keras-venv}"
tf_package="${TF_PACKAGE:-tensorflow-cpu==2.21.0}"
keras_package="${KERAS_PACKAGE:-keras>=3,<4}"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import tensorflow, keras, numpy" 2>/dev/null; then
    echo "keras venv ready: $venv"
    exit 0
fi
echo "creating $venv with $tf_package and $keras_package (a few hundred MB download)"
"$python" -m venv "$venv"
# The project's pip constraints (torch caps) do not concern this venv; keep the registry settings.
PIP_CONSTRAINT= "$venv/bin/python" -m pip install --quiet --upgrade pip
PIP_CONSTRAINT= "$venv/bin/python" -m pip install --quiet "$tf_package" "$keras_package" numpy
"$venv/bin/python" -c "import tensorflow as tf, keras; print('tensorflow', tf.__version__, 'keras', keras.__version__)"
