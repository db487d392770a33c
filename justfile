# Developer shortcuts. `just` is optional sugar: the two documented entry points are
#   python3 tasks.py run     and     python3 tasks.py test
# (both create .venv and install the project on first use).

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

bin := justfile_directory() / ".venv" / "bin"
engine := env("CONTAINER_ENGINE", "podman")
compose := env("COMPOSE", "docker compose")
image := env("SEEONLINE_IMAGE", "localhost/seeonline:latest")

# List the recipes.
default:
    @just --list --unsorted

# The service on an embedded Postgres (API + supervisor); extra arguments go to `seeonline run`.
run *args:
    python3 tasks.py run "$@"

# The whole test suite; extra arguments go to pytest.
test *args:
    python3 tasks.py test "$@"

# ruff (lint + format check) and mypy --strict, from .venv (`just test` installs them).
lint:
    @[ -x "{{ bin }}/ruff" ] && [ -x "{{ bin }}/mypy" ] || { echo "ruff/mypy missing: run 'python3 tasks.py test' once to install the test extras" >&2; exit 1; }
    "{{ bin }}/ruff" check .
    "{{ bin }}/ruff" format --check .
    "{{ bin }}/mypy"

# Apply the migrations in db/ to DATABASE_URL.
migrate *args:
    "{{ bin }}/seeonline" db upgrade "$@"

# The API benchmark (bench/api.py; see bench/README.md for ingest.py and workers.py); extra arguments go to it.
bench *args:
    "{{ bin }}/python" bench/api.py "$@"

# Build the application image (HEALTHCHECK needs the Docker image format under podman).
image:
    BUILDAH_FORMAT=docker {{ engine }} build -f Containerfile -t {{ image }} .

# Needs POSTGRES_PASSWORD, SEEONLINE_SECRET_KEY and SEEONLINE_API_KEYS (environment or an uncommitted .env).
# Build and start the compose stack (all services, or the ones named); wait until healthy.
up *services:
    {{ compose }} up -d --build --wait "$@"

# Stop and remove the stack's containers; the database volume stays (`just down --volumes` drops it).
down *args:
    POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-unused-by-down}" \
    SEEONLINE_SECRET_KEY="${SEEONLINE_SECRET_KEY:-unused-by-down}" \
    SEEONLINE_API_KEYS="${SEEONLINE_API_KEYS:-unused-by-down}" \
    {{ compose }} down "$@"
