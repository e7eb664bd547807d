#!/usr/bin/env bash
# The real services modeltap's tests and local stack run against, as plain processes
# (no Docker): PostgreSQL 15, a single-node Apache Kafka 4 broker in KRaft mode, Prometheus.
#
#   scripts/services.sh install [SERVICE...]   install what is missing (apt, Maven Central)
#   scripts/services.sh start   [SERVICE...]   install if needed, start, wait until ready
#   scripts/services.sh stop    [SERVICE...]   stop what this script started
#   scripts/services.sh status  [SERVICE...]   say what runs where
#   scripts/services.sh running [SERVICE...]   exit 0 only if all of them are up already
#   scripts/services.sh env                    print the MONITOR_TEST_* exports for tests
#
# SERVICE is postgres, kafka, prometheus, kserve-agent (KServe's inference-logger agent,
# built from the Go module proxy; "starting" it builds it once, as the tests run their own
# instances), kube (kube-apiserver built from the Go module proxy, over Debian's etcd) or
# helm (built once by scripts/tools.sh); none means all of them. A service that is already
# reachable through MONITOR_TEST_POSTGRES_URL, MONITOR_TEST_KAFKA (host:port) or
# MONITOR_TEST_PROMETHEUS (URL) is reused instead of started, e.g. one from
# `docker compose up`. State, data and logs live in $MONITOR_STATE_DIR (default ./.state),
# except a PostgreSQL cluster the postgres user could not reach there (a checkout under
# root's home): that one lives in $MONITOR_PG_CLUSTER_PARENT (default /var/tmp) and `stop`
# removes it. Ports: MONITOR_PG_PORT (55432), MONITOR_KAFKA_PORT (19092, and the next one
# for its controller), MONITOR_PROMETHEUS_PORT (19090), MONITOR_KUBE_PORT (16443, and the
# next two for etcd).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MONITOR_STATE_DIR:-$ROOT/.state}
mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd)  # absolute: postgres runs from /
PG_PORT=${MONITOR_PG_PORT:-55432}
KAFKA_PORT=${MONITOR_KAFKA_PORT:-19092}
CONTROLLER_PORT=$((KAFKA_PORT + 1))
PROM_PORT=${MONITOR_PROMETHEUS_PORT:-19090}
KUBE_PORT=${MONITOR_KUBE_PORT:-16443}
PG_BIN=/usr/lib/postgresql/15/bin
KAFKA_POM=$ROOT/scripts/kafka/pom.xml
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
ALL=(postgres kafka prometheus kserve-agent kube helm)

say() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

APT_UPDATED=0
apt_install() {
  say "installing Debian packages: $*"
  local log=$STATE/apt.log
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >"$log" 2>&1; then
    if [ "$APT_UPDATED" = 0 ]; then
      APT_UPDATED=1
      as_root apt-get update >>"$log" 2>&1 || die "apt-get update failed; see $log"
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1 \
        || die "apt-get install $* failed; see $log"
    else
      die "apt-get install $* failed; see $log"
    fi
  fi
}

# wait_until SECONDS WHAT LOG CMD...: poll CMD until it succeeds or time runs out.
wait_until() {
  local seconds=$1 what=$2 log=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$what did not become ready within ${seconds}s; last lines of $log:"
      tail -n 20 "$log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.3
  done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# free_port FROM: the first port from FROM up that nothing listens on.
free_port() { local p=$1; while port_open 127.0.0.1 "$p"; do p=$((p + 1)); done; echo "$p"; }

# port_in_use PORT VARIABLE WHAT: stop with one sentence when another process has PORT.
port_in_use() {
  port_open 127.0.0.1 "$1" || return 0
  local owner=""
  if command -v ss >/dev/null; then
    owner=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1 \
      | sed 's/users:(("\([^"]*\)",pid=\([0-9]*\)/ (\1, pid \2)/')
  fi
  die "port $1, which $3 would listen on, is already taken by another process$owner; stop it, or pick another port, e.g. $2=$(free_port $(($1 + 1))) make test"
}
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---------------------------------------------------------------- PostgreSQL 15

PG_DIR=$STATE/postgres
PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/modeltap"

as_postgres() {
  # From /, so a working directory postgres may not enter raises no warning.
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# Where the cluster lives. initdb and pg_ctl run as the postgres user, which cannot enter a
# checkout under a private directory (root's home, a mode-700 mktemp folder). Rather than
# open up the user's directories, such a checkout keeps its cluster in a folder of its own
# that postgres owns, named after the checkout so that status and stop find it again;
# `stop` removes it. Logs and the initdb output stay in $PG_DIR either way.
PG_CLUSTER_FILE=$PG_DIR/cluster-dir
pg_cluster() {
  if [ -f "$PG_CLUSTER_FILE" ]; then cat "$PG_CLUSTER_FILE"; return 0; fi
  if [ "$(id -u)" != 0 ] || as_postgres test -w "$PG_DIR" -a -x "$PG_DIR" 2>/dev/null; then
    echo "$PG_DIR"
  else
    local tag; tag=$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
    echo "${MONITOR_PG_CLUSTER_PARENT:-/var/tmp}/modeltap-pg-$tag"
  fi
}

postgres_install() {
  [ -x "$PG_BIN/initdb" ] && command -v psql >/dev/null && return 0
  apt_install postgresql-15 postgresql-client-15
}

pg_reachable() {  # URL
  local libpq=${1/postgresql+psycopg:/postgresql:}
  psql "$libpq" -Atqc 'select 1' >/dev/null 2>&1
}

pg_running() {  # CLUSTER
  [ -f "$1/data/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

# The port a running cluster listens on (line 4 of postmaster.pid): the one it was started
# with, which need not be today's MONITOR_PG_PORT.
pg_port() { sed -n 4p "$1/data/postmaster.pid" 2>/dev/null || true; }

postgres_start() {
  if [ -n "${MONITOR_TEST_POSTGRES_URL:-}" ] && [ "$MONITOR_TEST_POSTGRES_URL" != "$PG_URL" ]; then
    pg_reachable "$MONITOR_TEST_POSTGRES_URL" \
      || die "MONITOR_TEST_POSTGRES_URL is set but nothing answers there; unset it to start a local PostgreSQL"
    say "postgres: reusing $MONITOR_TEST_POSTGRES_URL"; return 0
  fi
  postgres_install
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PG_DIR"; fi
  local cluster; cluster=$(pg_cluster)
  if pg_running "$cluster"; then
    PG_PORT=$(pg_port "$cluster"); PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/modeltap"
    say "postgres: already running on 127.0.0.1:$PG_PORT"
  else
    port_in_use "$PG_PORT" MONITOR_PG_PORT PostgreSQL
    if [ "$cluster" != "$PG_DIR" ]; then
      if [ ! -d "$cluster" ]; then
        install -d -m 700 -o postgres -g postgres "$cluster" \
          || die "cannot create $cluster for the PostgreSQL cluster; set MONITOR_PG_CLUSTER_PARENT to a directory the postgres user can enter"
      fi
      echo "$cluster" >"$PG_CLUSTER_FILE"
    fi
    as_postgres test -w "$cluster" 2>/dev/null \
      || die "the postgres user cannot write to $cluster; set MONITOR_PG_CLUSTER_PARENT to a directory it can enter"
    if [ ! -f "$cluster/data/PG_VERSION" ]; then
      as_postgres "$PG_BIN/initdb" -D "$cluster/data" -A trust -U postgres --no-sync -E UTF8 \
        >"$PG_DIR/initdb.log" 2>&1 || {
          tail -n 5 "$PG_DIR/initdb.log" >&2
          grep -q 'Permission denied' "$PG_DIR/initdb.log" \
            && die "initdb, running as the postgres user, may not enter $cluster or a directory above it; set MONITOR_PG_CLUSTER_PARENT to a directory it can enter"
          die "initdb failed (log above, all of it in $PG_DIR/initdb.log)"
        }
    fi
    as_postgres "$PG_BIN/pg_ctl" -D "$cluster/data" -l "$cluster/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $cluster -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || {
        tail -n 20 "$cluster/postgres.log" >&2
        die "PostgreSQL did not start (log above, all of it in $cluster/postgres.log)"
      }
    say "postgres: started on 127.0.0.1:$PG_PORT (data and log in $cluster)"
  fi
  local admin="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  if [ "$(psql "$admin" -Atqc "select 1 from pg_database where datname = 'modeltap'")" != 1 ]; then
    psql "$admin" -qc 'CREATE DATABASE modeltap' >/dev/null
  fi
  MONITOR_TEST_POSTGRES_URL=$PG_URL
}

postgres_stop() {
  local cluster; cluster=$(pg_cluster)
  if pg_running "$cluster"; then
    as_postgres "$PG_BIN/pg_ctl" -D "$cluster/data" -m fast -w stop >/dev/null
    say "postgres: stopped"
  fi
  # A cluster kept outside the checkout is throwaway: leave nothing behind.
  if [ "$cluster" != "$PG_DIR" ]; then
    rm -rf "$cluster" "$PG_CLUSTER_FILE"
  fi
}

postgres_status() {
  if [ -n "${MONITOR_TEST_POSTGRES_URL:-}" ] && [ "$MONITOR_TEST_POSTGRES_URL" != "$PG_URL" ]; then
    pg_reachable "$MONITOR_TEST_POSTGRES_URL" && echo "postgres: reachable at $MONITOR_TEST_POSTGRES_URL (external)" \
      || echo "postgres: NOT reachable at $MONITOR_TEST_POSTGRES_URL (external)"
  elif pg_running "$(pg_cluster)"; then
    local port; port=$(pg_port "$(pg_cluster)")
    echo "postgres: running at postgresql+psycopg://postgres@127.0.0.1:${port:-$PG_PORT}/modeltap"
  else
    echo "postgres: stopped"
  fi
}

# ---------------------------------------------------------------- Apache Kafka (KRaft)

KAFKA_DIR=$STATE/kafka

kafka_version() { sed -n '/kafka_2.13/{n;s/.*<version>\(.*\)<\/version>.*/\1/p;}' "$KAFKA_POM"; }

kafka_install() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  local version; version=$(kafka_version)
  if [ -f "$KAFKA_DIR/libs/.complete-$version" ]; then return 0; fi
  say "kafka: fetching Apache Kafka $version jars from Maven Central"
  rm -rf "$KAFKA_DIR/libs"; mkdir -p "$KAFKA_DIR/libs"
  mvn -B -q -f "$KAFKA_POM" "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_DIR/libs" >"$KAFKA_DIR/maven.log" 2>&1 \
    || { tail -n 20 "$KAFKA_DIR/maven.log" >&2; die "could not fetch the Kafka jars; see $KAFKA_DIR/maven.log"; }
  touch "$KAFKA_DIR/libs/.complete-$version"
}

kafka_started() { grep -q 'Kafka Server started' "$KAFKA_DIR/kafka.log" 2>/dev/null && port_open 127.0.0.1 "$KAFKA_PORT"; }

kafka_start() {
  if [ -n "${MONITOR_TEST_KAFKA:-}" ] && [ "$MONITOR_TEST_KAFKA" != "127.0.0.1:$KAFKA_PORT" ]; then
    port_open "${MONITOR_TEST_KAFKA%:*}" "${MONITOR_TEST_KAFKA##*:}" \
      || die "MONITOR_TEST_KAFKA=$MONITOR_TEST_KAFKA is set but nothing listens there; unset it to start a local broker"
    say "kafka: reusing $MONITOR_TEST_KAFKA"; return 0
  fi
  mkdir -p "$KAFKA_DIR"
  if pid_alive "$KAFKA_DIR/kafka.pid"; then
    say "kafka: already running on 127.0.0.1:$KAFKA_PORT"
  else
    port_in_use "$KAFKA_PORT" MONITOR_KAFKA_PORT Kafka
    # The controller listens on the next port up.
    port_in_use "$CONTROLLER_PORT" MONITOR_KAFKA_PORT "Kafka's controller"
    kafka_install
    cat >"$KAFKA_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
    local cp="$KAFKA_DIR/libs/*"
    if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
      local id
      # A cluster id starting with '-' would be read as an option.
      until id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1) && [ "${id:0:1}" != - ]; do :; done
      java -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$KAFKA_DIR/server.properties" \
        --ignore-formatted >"$KAFKA_DIR/format.log" 2>&1 || die "formatting Kafka storage failed; see $KAFKA_DIR/format.log"
    fi
    : >"$KAFKA_DIR/kafka.log"
    setsid nohup java -Xmx768m -Xms256m -XX:+UseG1GC -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
      -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties" >>"$KAFKA_DIR/kafka.log" 2>&1 </dev/null &
    echo $! >"$KAFKA_DIR/kafka.pid"
    wait_until 90 "Kafka" "$KAFKA_DIR/kafka.log" kafka_started
    say "kafka: started on 127.0.0.1:$KAFKA_PORT (log $KAFKA_DIR/kafka.log)"
  fi
  MONITOR_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
}

kafka_stop() {
  pid_alive "$KAFKA_DIR/kafka.pid" || { rm -f "$KAFKA_DIR/kafka.pid"; return 0; }
  local pid; pid=$(cat "$KAFKA_DIR/kafka.pid")
  kill -TERM "$pid"  # a controlled shutdown
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.3; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$KAFKA_DIR/kafka.pid"
  say "kafka: stopped"
}

kafka_status() {
  if [ -n "${MONITOR_TEST_KAFKA:-}" ] && [ "$MONITOR_TEST_KAFKA" != "127.0.0.1:$KAFKA_PORT" ]; then
    echo "kafka: external at $MONITOR_TEST_KAFKA"
  elif pid_alive "$KAFKA_DIR/kafka.pid"; then
    echo "kafka: running at 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_DIR/kafka.pid"))"
  else
    echo "kafka: stopped"
  fi
}

# ---------------------------------------------------------------- Prometheus

PROM_DIR=$STATE/prometheus

prometheus_install() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v amtool >/dev/null \
    && command -v curl >/dev/null && return 0
  apt_install prometheus prometheus-alertmanager curl
}

prometheus_ready() { curl -fsS "$1/-/ready" >/dev/null 2>&1; }

prometheus_start() {
  local own="http://127.0.0.1:$PROM_PORT"
  if [ -n "${MONITOR_TEST_PROMETHEUS:-}" ] && [ "$MONITOR_TEST_PROMETHEUS" != "$own" ]; then
    prometheus_ready "$MONITOR_TEST_PROMETHEUS" \
      || die "MONITOR_TEST_PROMETHEUS=$MONITOR_TEST_PROMETHEUS is set but not ready; unset it to start a local Prometheus"
    say "prometheus: reusing $MONITOR_TEST_PROMETHEUS"; return 0
  fi
  prometheus_install
  mkdir -p "$PROM_DIR/targets" "$PROM_DIR/rules" "$PROM_DIR/data"
  if pid_alive "$PROM_DIR/prometheus.pid"; then
    say "prometheus: already running on $own"
  else
    port_in_use "$PROM_PORT" MONITOR_PROMETHEUS_PORT Prometheus
    # Tests add scrape targets by dropping JSON files into targets/ (file discovery) and
    # rule files into rules/ followed by POST /-/reload.
    cat >"$PROM_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $PROM_DIR/rules/*.yml
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$PROM_PORT"]
  - job_name: modeltap
    file_sd_configs:
      - files: ["$PROM_DIR/targets/*.json"]
        refresh_interval: 2s
EOF
    promtool check config "$PROM_DIR/prometheus.yml" >"$PROM_DIR/check.log" 2>&1 \
      || die "generated Prometheus config is invalid; see $PROM_DIR/check.log"
    : >"$PROM_DIR/prometheus.log"
    setsid nohup prometheus --config.file="$PROM_DIR/prometheus.yml" \
      --storage.tsdb.path="$PROM_DIR/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
      --web.enable-lifecycle --web.enable-admin-api --storage.tsdb.allow-overlapping-blocks \
      >>"$PROM_DIR/prometheus.log" 2>&1 </dev/null &
    echo $! >"$PROM_DIR/prometheus.pid"
    wait_until 60 "Prometheus" "$PROM_DIR/prometheus.log" prometheus_ready "$own"
    say "prometheus: started on $own (log $PROM_DIR/prometheus.log)"
  fi
  MONITOR_TEST_PROMETHEUS=$own
  MONITOR_TEST_PROMETHEUS_DIR=$PROM_DIR
}

prometheus_stop() {
  pid_alive "$PROM_DIR/prometheus.pid" || { rm -f "$PROM_DIR/prometheus.pid"; return 0; }
  local pid; pid=$(cat "$PROM_DIR/prometheus.pid")
  kill -TERM "$pid"
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PROM_DIR/prometheus.pid"
  say "prometheus: stopped"
}

prometheus_status() {
  local own="http://127.0.0.1:$PROM_PORT"
  if [ -n "${MONITOR_TEST_PROMETHEUS:-}" ] && [ "$MONITOR_TEST_PROMETHEUS" != "$own" ]; then
    echo "prometheus: external at $MONITOR_TEST_PROMETHEUS"
  elif pid_alive "$PROM_DIR/prometheus.pid"; then
    echo "prometheus: running at $own (pid $(cat "$PROM_DIR/prometheus.pid"))"
  else
    echo "prometheus: stopped"
  fi
}

# ---------------------------------------------------------------- KServe's agent

# The real inference-logger agent KServe puts next to a predictor, so the tests can check
# `monitor serve` against what it really sends. Built once from the Go module proxy (about
# three minutes on two cores) from scripts/kserve-agent/go.mod, copied out of the checkout
# so the build leaves the tree untouched; the Go module cache (~/go/pkg/mod) is a cache.
KSERVE_VERSION=$(sed -n 's/^require github.com\/kserve\/kserve \(v[^ ]*\)$/\1/p' "$ROOT/scripts/kserve-agent/go.mod")
KSERVE_AGENT=$STATE/bin/kserve-agent-$KSERVE_VERSION

kserve-agent_install() {
  [ -x "$KSERVE_AGENT" ] && return 0
  command -v go >/dev/null || apt_install golang-go
  say "kserve-agent: building KServe's agent $KSERVE_VERSION with Go (a few minutes the first time)"
  local build=$STATE/kserve-agent-build log=$STATE/kserve-agent-build.log
  rm -rf "$build"; mkdir -p "$build" "$STATE/bin"
  cp "$ROOT/scripts/kserve-agent/"* "$build/"
  (cd "$build" && GOFLAGS=-mod=mod go build -o "$KSERVE_AGENT.tmp" github.com/kserve/kserve/cmd/agent) \
    >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "building KServe's agent failed; see $log"; }
  mv "$KSERVE_AGENT.tmp" "$KSERVE_AGENT"
  rm -rf "$build"
}

kserve-agent_start() {
  kserve-agent_install
  MONITOR_TEST_KSERVE_AGENT=$KSERVE_AGENT
}

kserve-agent_stop() { :; }  # nothing runs: the tests start and stop their own agents

kserve-agent_status() {
  if [ -x "$KSERVE_AGENT" ]; then echo "kserve-agent: built at $KSERVE_AGENT"
  else echo "kserve-agent: stopped (not built yet)"; fi
}

# ---------------------------------------------------------------- Kubernetes API server

# A real kube-apiserver (built once from the Go module proxy, scripts/kube-apiserver/go.mod)
# over a Debian etcd: what the chart's server-side apply and the injection webhook need.
# No kubelet and no controllers: pods are stored and stay Pending. Clients authenticate with
# the static token in $KUBE_DIR/token; $KUBE_DIR/kubeconfig points kubectl and helm at it.
KUBE_VERSION=$(sed -n 's/^require k8s.io\/kubernetes \(v[^ ]*\)$/\1/p' "$ROOT/scripts/kube-apiserver/go.mod")
KUBE_APISERVER=$STATE/bin/kube-apiserver-$KUBE_VERSION
KUBE_DIR=$STATE/kube
ETCD_PORT=$((KUBE_PORT + 1))
ETCD_PEER_PORT=$((KUBE_PORT + 2))

kube_install() {
  command -v etcd >/dev/null || apt_install etcd-server
  command -v kubectl >/dev/null || apt_install kubernetes-client
  command -v openssl >/dev/null || apt_install openssl
  command -v curl >/dev/null || apt_install curl
  [ -x "$KUBE_APISERVER" ] && return 0
  command -v go >/dev/null || apt_install golang-go
  say "kube: building kube-apiserver $KUBE_VERSION with Go (about 6 minutes on 2 cores, once)"
  local build=$STATE/kube-apiserver-build log=$STATE/kube-apiserver-build.log
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  rm -rf "$build"; mkdir -p "$build" "$STATE/bin"
  cp "$ROOT/scripts/kube-apiserver/"* "$build/"
  (cd "$build" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
      -o "$KUBE_APISERVER.tmp" k8s.io/kubernetes/cmd/kube-apiserver) \
    >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "building kube-apiserver failed; see $log"; }
  mv "$KUBE_APISERVER.tmp" "$KUBE_APISERVER"
  rm -rf "$build"
}

kube_url() { echo "https://127.0.0.1:$KUBE_PORT"; }
kube_ready() {
  curl -fsS --cacert "$KUBE_DIR/certs/apiserver.crt" -H "Authorization: Bearer $(cat "$KUBE_DIR/token")" \
    "$(kube_url)/readyz" >/dev/null 2>&1
}

kube_start() {
  mkdir -p "$KUBE_DIR"
  if pid_alive "$KUBE_DIR/apiserver.pid" && pid_alive "$KUBE_DIR/etcd.pid"; then
    KUBE_PORT=$(cat "$KUBE_DIR/port")
    say "kube: already running on $(kube_url)"
  else
    # Ports first: a taken port is one sentence, before any build.
    port_in_use "$KUBE_PORT" MONITOR_KUBE_PORT kube-apiserver
    port_in_use "$ETCD_PORT" MONITOR_KUBE_PORT "etcd (kube-apiserver's port + 1)"
    port_in_use "$ETCD_PEER_PORT" MONITOR_KUBE_PORT "etcd's peer port (kube-apiserver's port + 2)"
    kube_install
    kube_stop_quietly
    # A fresh etcd each start: the tests' objects from an earlier run are gone.
    rm -rf "$KUBE_DIR/etcd"; mkdir -p "$KUBE_DIR/certs"
    [ -f "$KUBE_DIR/token" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$KUBE_DIR/token"
    echo "$(cat "$KUBE_DIR/token"),admin,uid-admin,system:masters" >"$KUBE_DIR/tokens.csv"
    [ -f "$KUBE_DIR/sa.key" ] || openssl genrsa -out "$KUBE_DIR/sa.key" 2048 2>/dev/null
    openssl rsa -in "$KUBE_DIR/sa.key" -pubout -out "$KUBE_DIR/sa.pub" 2>/dev/null
    : >"$KUBE_DIR/etcd.log"
    setsid nohup etcd --data-dir "$KUBE_DIR/etcd" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync \
      >>"$KUBE_DIR/etcd.log" 2>&1 </dev/null &
    echo $! >"$KUBE_DIR/etcd.pid"
    wait_until 30 etcd "$KUBE_DIR/etcd.log" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
    : >"$KUBE_DIR/apiserver.log"
    # The serving certificate is generated into certs/ (SAN 127.0.0.1); the tests trust it.
    setsid nohup "$KUBE_APISERVER" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
      --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$KUBE_PORT" \
      --cert-dir="$KUBE_DIR/certs" --service-account-issuer="$(kube_url)" \
      --service-account-key-file="$KUBE_DIR/sa.pub" --service-account-signing-key-file="$KUBE_DIR/sa.key" \
      --service-cluster-ip-range=10.0.0.0/24 --token-auth-file="$KUBE_DIR/tokens.csv" \
      --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount \
      >>"$KUBE_DIR/apiserver.log" 2>&1 </dev/null &
    echo $! >"$KUBE_DIR/apiserver.pid"
    echo "$KUBE_PORT" >"$KUBE_DIR/port"
    wait_until 90 kube-apiserver "$KUBE_DIR/apiserver.log" kube_ready
    local token; token=$(cat "$KUBE_DIR/token")
    printf '%s\n' 'apiVersion: v1' 'kind: Config' \
      "clusters: [{name: modeltap-test, cluster: {server: \"$(kube_url)\", certificate-authority: \"$KUBE_DIR/certs/apiserver.crt\"}}]" \
      "users: [{name: admin, user: {token: \"$token\"}}]" \
      'contexts: [{name: modeltap-test, context: {cluster: modeltap-test, user: admin}}]' \
      'current-context: modeltap-test' >"$KUBE_DIR/kubeconfig"
    say "kube: kube-apiserver $KUBE_VERSION on $(kube_url) (KUBECONFIG=$KUBE_DIR/kubeconfig; logs in $KUBE_DIR)"
  fi
  MONITOR_TEST_KUBE_URL=$(kube_url)
  MONITOR_TEST_KUBE_CONFIG=$KUBE_DIR/kubeconfig
}

kube_stop_quietly() {
  local name pid deadline
  for name in apiserver etcd; do
    pid_alive "$KUBE_DIR/$name.pid" || { rm -f "$KUBE_DIR/$name.pid"; continue; }
    pid=$(cat "$KUBE_DIR/$name.pid"); kill -TERM "$pid"
    deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$KUBE_DIR/$name.pid"
  done
}

kube_stop() {
  pid_alive "$KUBE_DIR/apiserver.pid" || pid_alive "$KUBE_DIR/etcd.pid" || return 0
  kube_stop_quietly
  say "kube: stopped"
}

kube_status() {
  if pid_alive "$KUBE_DIR/apiserver.pid"; then
    echo "kube: running at https://127.0.0.1:$(cat "$KUBE_DIR/port") (KUBECONFIG=$KUBE_DIR/kubeconfig)"
  else
    echo "kube: stopped"
  fi
}

# Helm, built once with `go install` by scripts/tools.sh (which pins its version).
helm_install() { "$ROOT/scripts/tools.sh" helm; }
helm_start() { helm_install; MONITOR_TEST_HELM=$STATE/bin/helm; }
helm_stop() { :; }  # nothing runs
helm_status() {
  if [ -x "$STATE/bin/helm" ]; then echo "helm: built at $STATE/bin/helm"
  else echo "helm: stopped (not built yet)"; fi
}

# ---------------------------------------------------------------- main

# forget_env SERVICE: drop a stopped service from services.env, so that the next start does
# not take its old address for an external one.
forget_env() {
  [ -f "$STATE/services.env" ] || return 0
  local variable
  case $1 in
    postgres) variable=MONITOR_TEST_POSTGRES_URL ;;
    kafka) variable=MONITOR_TEST_KAFKA ;;
    prometheus) variable=MONITOR_TEST_PROMETHEUS ;;
    kserve-agent) variable=MONITOR_TEST_KSERVE_AGENT ;;
    kube) variable=MONITOR_TEST_KUBE ;;
    helm) variable=MONITOR_TEST_HELM ;;
  esac
  sed -i "/^export ${variable}[_=]/d" "$STATE/services.env"
}

write_env() {
  {
    [ -n "${MONITOR_TEST_POSTGRES_URL:-}" ] && echo "export MONITOR_TEST_POSTGRES_URL='$MONITOR_TEST_POSTGRES_URL'"
    [ -n "${MONITOR_TEST_KAFKA:-}" ] && echo "export MONITOR_TEST_KAFKA='$MONITOR_TEST_KAFKA'"
    [ -n "${MONITOR_TEST_PROMETHEUS:-}" ] && echo "export MONITOR_TEST_PROMETHEUS='$MONITOR_TEST_PROMETHEUS'"
    [ -n "${MONITOR_TEST_PROMETHEUS_DIR:-}" ] && echo "export MONITOR_TEST_PROMETHEUS_DIR='$MONITOR_TEST_PROMETHEUS_DIR'"
    [ -n "${MONITOR_TEST_KSERVE_AGENT:-}" ] && echo "export MONITOR_TEST_KSERVE_AGENT='$MONITOR_TEST_KSERVE_AGENT'"
    [ -n "${MONITOR_TEST_KUBE_URL:-}" ] && echo "export MONITOR_TEST_KUBE_URL='$MONITOR_TEST_KUBE_URL'"
    [ -n "${MONITOR_TEST_KUBE_CONFIG:-}" ] && echo "export MONITOR_TEST_KUBE_CONFIG='$MONITOR_TEST_KUBE_CONFIG'"
    [ -n "${MONITOR_TEST_HELM:-}" ] && echo "export MONITOR_TEST_HELM='$MONITOR_TEST_HELM'"
    echo "export MONITOR_STATE_DIR='$STATE'"
  } >"$STATE/services.env"
}

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
  local action=${1:-}; [ $# -gt 0 ] && shift
  local services=("$@"); [ ${#services[@]} -eq 0 ] && services=("${ALL[@]}")
  for service in "${services[@]}"; do
    case $service in postgres|kafka|prometheus|kserve-agent|kube|helm) ;; *) die "unknown service '$service'; choose from: ${ALL[*]}";; esac
  done
  mkdir -p "$STATE"
  case $action in
    install) for s in "${services[@]}"; do "${s}_install"; done ;;
    start)
      # Pick up what an earlier start recorded, so a partial restart keeps the rest.
      # shellcheck disable=SC1091
      [ -f "$STATE/services.env" ] && . "$STATE/services.env"
      for s in "${services[@]}"; do "${s}_start"; done
      write_env
      say "environment for tests written to $STATE/services.env" ;;
    stop)
      for s in "${services[@]}"; do "${s}_stop"; forget_env "$s"; done ;;
    status) for s in "${services[@]}"; do "${s}_status"; done ;;
    running)
      # shellcheck disable=SC1091
      [ -f "$STATE/services.env" ] && . "$STATE/services.env"
      for s in "${services[@]}"; do "${s}_status" | grep -qE ': (running|reachable|external|built)' || exit 1; done ;;
    env) [ -f "$STATE/services.env" ] && cat "$STATE/services.env" || die "nothing started yet; run: $0 start" ;;
    ""|-h|--help|help) usage ;;
    *) usage; die "unknown action '$action'" ;;
  esac
}

main "$@"
