#!/usr/bin/env bash
# Set up (scripts/setup.sh: .venv and pip only), lint (ruff check + ruff format --check), build the
# documentation site strictly (mkdocs --strict) and run the whole test suite (pytest). Extra arguments go to
# pytest. It installs no system package: HAMJEPA_INSTALL_DEBIAN_PACKAGES=1 (set by CI) lets setup.sh
# `apt-get install dataset-fashion-mnist` for the image-halves tests, which are skipped without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks docs/hooks
.venv/bin/ruff format --check src tests benchmarks docs/hooks
# The site (mkdocs.yml): broken links, missing pages and docstring problems fail the build.
site_dir=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site_dir"
rm -rf "$site_dir"
.venv/bin/python -m pytest "$@"
