# Operator and developer tasks. `just` is on PyPI: `pip install rust-just` (or `pipx install rust-just`).
# The two documented entry points need nothing but Python:
#   python3 tasks.py run     and     python3 tasks.py test
#
# The container tasks keep the old service's names (run, stop, clean, full-clean, restart, rebuild,
# logs, ps, supervisor) and drive compose.yaml. Those that start something need the three secrets
# (`just secrets` writes them once into .env); stop, clean, full-clean, logs and ps work without them.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

bin := justfile_directory() / ".venv" / "bin"
engine := env("CONTAINER_ENGINE", "podman")
compose := env("COMPOSE", "docker compose")
image := env("SEEONLINE_IMAGE", "localhost/seeonline:latest")
project := "seeonline"
# Teardown and inspection cover every profile: `docker compose down` alone would leave the monitoring
# profile's containers running on the network it then fails to remove.
every_profile := "--profile '*'"

# compose interpolates the whole file for every command, secrets included; commands that use none
# of them get placeholders (only when neither the environment nor .env sets them).
no_secrets := 'for name in POSTGRES_PASSWORD POSTGRES_MIGRATE_PASSWORD POSTGRES_APP_PASSWORD SEEONLINE_SECRET_KEY SEEONLINE_API_KEYS; do if [ -z "${!name:-}" ] && ! grep -qs "^$name=" .env; then export "$name=unused-by-this-task"; fi; done;'

# List the recipes.
default:
    @just --list --unsorted

# ---- the compose stack (compose.yaml) ----

# Build and start the stack (all services, or the ones named) and wait until every one is healthy.
run *services: _dns-check
    {{ compose }} up --build -d --wait "$@"

# Stop the stack's containers (they keep their state; `just run` starts them again).
stop *services:
    @{{ no_secrets }} {{ compose }} stop "$@"

# Stop and remove the stack's containers and network; the database volume stays.
clean:
    @{{ no_secrets }} {{ compose }} {{ every_profile }} down --remove-orphans

# Remove everything this project made: containers, network, the DATABASE VOLUME, its image and build cache.
full-clean *flags:
    #!/usr/bin/env bash
    set -euo pipefail
    {{ no_secrets }}
    if [ "${1:-}" != "--yes" ]; then
        read -r -p "Delete the {{ project }} database volume, containers and images? [y/N] " answer
        [[ "$answer" == [yY]* ]] || { echo "nothing deleted"; exit 1; }
    fi
    {{ compose }} {{ every_profile }} down --volumes --remove-orphans
    {{ engine }} rmi --force {{ image }} 2>/dev/null || true
    # Build cache: the dangling layers of this project's builds only (the Containerfile labels them).
    {{ engine }} image prune --force --filter label=io.seeonline.project={{ project }} >/dev/null

# Stop the stack, then start it again (rebuilding the image if the code changed).
restart: stop run

# Remove the stack's containers (not the data), then build and start it again.
rebuild: clean run

# Follow the logs of every service, or of the ones named.
logs *services:
    @{{ no_secrets }} {{ compose }} {{ every_profile }} logs --follow --tail 200 "$@"

# The stack's containers and their health.
ps:
    @{{ no_secrets }} {{ compose }} {{ every_profile }} ps --all

# Start the supervisor alone (with the database and the migration it needs), without the API.
supervisor: _dns-check
    {{ compose }} up --build -d --wait supervisor

# Never overwrites: a new POSTGRES_PASSWORD cannot log in to an existing volume and a new
# SEEONLINE_SECRET_KEY cannot read the stored tracker sessions.
#
# Generate the three secrets into .env (mode 0600), only if there is no .env yet.
secrets:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -e .env ]; then echo ".env exists: left as it is" >&2; exit 0; fi
    umask 077
    hex() { python3 -c "import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))" "$1"; }
    {
        echo "POSTGRES_PASSWORD=$(hex 24)"
        echo "POSTGRES_MIGRATE_PASSWORD=$(hex 24)"
        echo "POSTGRES_APP_PASSWORD=$(hex 24)"
        echo "SEEONLINE_SECRET_KEY=$(hex 32)"
        echo "SEEONLINE_API_KEYS=$(hex 24)"
    } > .env.new
    mv .env.new .env
    echo "wrote .env (0600); keep it: the database and the stored sessions need the same values" >&2

# Build the application image alone (HEALTHCHECK needs the Docker image format under podman).
image:
    BUILDAH_FORMAT=docker {{ engine }} build -f Containerfile -t {{ image }} .

# Podman's CNI networks resolve service names only with the dnsname plugin, and only if the network
# was created after the plugin was installed; otherwise every service fails with "Name or service
# not known" for `postgres`. Say so before starting anything.
_dns-check:
    #!/usr/bin/env bash
    set -euo pipefail
    [ "{{ engine }}" = podman ] && command -v podman >/dev/null || exit 0
    network="{{ project }}_default"
    if podman network exists "$network" 2>/dev/null; then
        if [ "$(podman network inspect "$network" --format '{{{{.DNSEnabled}}')" != true ]; then
            echo "podman network $network has no DNS (created before the dnsname plugin was installed):" >&2
            echo "recreate it with 'just clean' then 'just run'." >&2
            exit 1
        fi
    elif podman info --format '{{{{.Host.NetworkBackend}}' 2>/dev/null | grep -qx cni \
         && ! { [ -x /usr/lib/cni/dnsname ] || [ -x /usr/libexec/cni/dnsname ] || [ -x /opt/cni/bin/dnsname ]; }; then
        echo "podman (CNI) lacks the dnsname plugin: services cannot find each other by name." >&2
        echo "install it (Debian: apt-get install golang-github-containernetworking-plugin-dnsname), then 'just run'." >&2
        exit 1
    fi

# ---- development on this machine (no containers) ----

# The service on an embedded Postgres (API + supervisor; the demo when nothing is configured).
dev *args:
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
