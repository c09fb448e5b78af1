#!/usr/bin/env bash
# Set up (scripts/setup.sh), lint, build the documentation site strictly, and run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_FASHION_MNIST=1 bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks docs/hooks
.venv/bin/ruff format --check src tests benchmarks docs/hooks
# The site (mkdocs.yml): broken links, missing pages and docstring problems fail the build.
site_dir=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site_dir"
rm -rf "$site_dir"
.venv/bin/python -m pytest "$@"
