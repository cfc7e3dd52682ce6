#!/usr/bin/env bash
# The test command: makes sure the tools and services the tests need are there, then runs every
# test.
#
#   ./scripts/test.sh                     all tests
#   ./scripts/test.sh webhooks            extra arguments go to `cargo test`
#   ./scripts/test.sh --check-only        only check (and install or start) what the tests need
#
# Tools, checked before anything is built: cargo; xmllint (the SAF-T tests validate exports
# with it); Chromium and ChromeDriver (the console's browser tests). Run as root on a machine
# with apt-get, this installs the missing ones from Debian's packages (libxml2-utils, chromium,
# chromium-driver); otherwise it names, in one line, what to install, and stops. Their
# locations: XMLLINT (default: xmllint on PATH), CHROMIUM (/usr/bin/chromium), CHROMEDRIVER
# (/usr/bin/chromedriver); the tests read the same variables. TEST_SH_NO_INSTALL=1: never
# install, only say what is missing.
#
# The tests need a real PostgreSQL and RabbitMQ, at TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432; the user must be allowed to create databases) and
# TEST_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f). When one does not answer on its
# default address, this starts it: the machine's own installation when there is one (a
# PostgreSQL cluster in /etc/postgresql, `rabbitmq-server`), else with docker compose
# (docker-compose.yml's `postgres` and `rabbitmq`) when a Docker engine is available, leaving it
# running for the next time.
#
# TEST_SERVICES_TIMEOUT: seconds to wait for services started here (default 90).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly DEFAULT_DATABASE_URL="postgres://postgres@127.0.0.1:5432"
readonly DEFAULT_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-$DEFAULT_DATABASE_URL}"
export TEST_AMQP_URL="${TEST_AMQP_URL:-$DEFAULT_AMQP_URL}"
readonly WAIT_SECONDS="${TEST_SERVICES_TIMEOUT:-90}"
XMLLINT="${XMLLINT:-xmllint}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export XMLLINT CHROMIUM CHROMEDRIVER

say() { printf 'test.sh: %s\n' "$*" >&2; }

# Prints "host port" of a URL like scheme://user:password@host:port/path?query.
# (IPv6 literals are not handled; use a host name or an IPv4 address.)
endpoint() {
    local url=$1 default_port=$2 rest host port
    rest=${url#*://}
    rest=${rest%%/*}
    rest=${rest%%\?*}
    rest=${rest##*@}
    host=${rest%%:*}
    port=$default_port
    [[ $rest == *:* ]] && port=${rest##*:}
    printf '%s %s\n' "${host:-127.0.0.1}" "$port"
}

# True when something accepts TCP connections at host $1, port $2 (bash's /dev/tcp; bounded
# by `timeout` where it exists, since a filtered port would otherwise hang).
answers() {
    if command -v timeout >/dev/null 2>&1; then
        # shellcheck disable=SC2016 # $0 and $1 expand in the child bash, as intended.
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

# True when host $1 port $2 is where docker-compose.yml publishes the service on port $3.
is_compose_address() {
    [[ ($1 == 127.0.0.1 || $1 == localhost) && $2 == "$3" ]]
}

# Prints the compose command (`docker compose` or `docker-compose`) when a Docker engine answers.
compose_command() {
    if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
        return 1
    fi
    if docker compose version >/dev/null 2>&1; then
        echo "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo "docker-compose"
    else
        return 1
    fi
}

# Waits until every "name host port" triple after $1 (where to look when one does not answer)
# answers, or fails after WAIT_SECONDS.
wait_for() {
    local hint=$1 deadline=$((SECONDS + WAIT_SECONDS)) name host port
    shift
    while (($#)); do
        name=$1 host=$2 port=$3
        until answers "$host" "$port"; do
            if ((SECONDS >= deadline)); then
                say "$name did not answer on $host:$port within ${WAIT_SECONDS}s."
                say "See $hint."
                return 1
            fi
            sleep 1
        done
        say "$name answers on $host:$port."
        shift 3
    done
}

# Prints the arguments joined by "; ".
joined() {
    local IFS=';'
    local text="$*"
    printf '%s\n' "${text//;/; }"
}

# Starts the machine's own PostgreSQL or RabbitMQ ($1: postgres or rabbitmq) when it is
# installed here but not running; false when it is not installed or cannot be started by us.
start_local() {
    case $1 in
    postgres)
        local version
        version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
        [[ -n $version ]] && command -v pg_ctlcluster >/dev/null 2>&1 || return 1
        say "Starting the local PostgreSQL $version cluster \`main\`."
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        ;;
    rabbitmq)
        command -v rabbitmq-server >/dev/null 2>&1 || return 1
        say "Starting the local RabbitMQ (rabbitmq-server -detached)."
        rabbitmq-server -detached
        ;;
    esac
}

# Makes sure both services answer, starting the missing ones locally or with compose where
# that can help.
ensure_services() {
    local pg_host pg_port mq_host mq_port missing=() to_start=() waits=() compose
    read -r pg_host pg_port < <(endpoint "$TEST_DATABASE_URL" 5432)
    read -r mq_host mq_port < <(endpoint "$TEST_AMQP_URL" 5672)

    if ! answers "$pg_host" "$pg_port"; then
        missing+=("PostgreSQL at $pg_host:$pg_port (TEST_DATABASE_URL)")
        if is_compose_address "$pg_host" "$pg_port" 5432; then
            to_start+=(postgres)
            waits+=(postgres "$pg_host" "$pg_port")
        fi
    fi
    if ! answers "$mq_host" "$mq_port"; then
        missing+=("RabbitMQ at $mq_host:$mq_port (TEST_AMQP_URL)")
        if is_compose_address "$mq_host" "$mq_port" 5672; then
            to_start+=(rabbitmq)
            waits+=(rabbitmq "$mq_host" "$mq_port")
        fi
    fi
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    if ((${#to_start[@]} == ${#missing[@]})); then
        local started=() service
        for service in "${to_start[@]}"; do
            start_local "$service" && started+=("$service")
        done
        if ((${#started[@]} == ${#to_start[@]})); then
            wait_for "the service's log (/var/log/postgresql, /var/log/rabbitmq)" "${waits[@]}"
            return
        fi
    fi

    if ((${#to_start[@]} == ${#missing[@]})) && compose=$(compose_command); then
        say "Not answering: $(joined "${missing[@]}")."
        say "Starting ${to_start[*]} with \`$compose up -d\` (stop them with \`$compose stop\`)."
        # $compose is "docker compose" or "docker-compose": split on purpose.
        # shellcheck disable=SC2086
        $compose up -d "${to_start[@]}"
        wait_for "\`$compose logs\`" "${waits[@]}"
        return
    fi

    say "Not answering: $(joined "${missing[@]}")."
    say "Start them, then run this again. Either:"
    say "  - with Docker: docker compose up -d postgres rabbitmq"
    say "  - or locally: PostgreSQL on 127.0.0.1:5432 (user postgres, allowed to create"
    say "    databases) and RabbitMQ on 127.0.0.1:5672 (user guest), or point"
    say "    TEST_DATABASE_URL and TEST_AMQP_URL at yours."
    return 1
}

# Prints the Debian package of each missing tool, one a line.
missing_packages() {
    command -v "$XMLLINT" >/dev/null 2>&1 || echo libxml2-utils
    [[ -x $CHROMIUM ]] || echo chromium
    [[ -x $CHROMEDRIVER ]] || echo chromium-driver
}

# Makes sure the tests' tools are there before anything is built: installs the missing ones
# as root with apt-get, or says in one line what to install and fails.
ensure_tools() {
    if ! command -v cargo >/dev/null 2>&1; then
        say "cargo is missing: install Rust (https://rustup.rs, or Debian's cargo package), then run this again."
        return 1
    fi
    local packages
    mapfile -t packages < <(missing_packages)
    ((${#packages[@]} == 0)) && return 0
    if [[ ${TEST_SH_NO_INSTALL:-} != 1 && $EUID == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "Installing Debian's ${packages[*]} (the SAF-T and browser tests need them)."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
        mapfile -t packages < <(missing_packages)
        ((${#packages[@]} == 0)) && return 0
    fi
    say "missing: ${packages[*]}: install them (Debian/Ubuntu: sudo apt-get install ${packages[*]}), or point XMLLINT, CHROMIUM and CHROMEDRIVER at yours, then run this again."
    return 1
}

main() {
    ensure_tools
    ensure_services
    if [[ ${1:-} == --check-only ]]; then
        say "The tools are there; PostgreSQL and RabbitMQ answer."
        return 0
    fi
    cargo test --locked --all-targets "$@"
}

main "$@"
