#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft) on 127.0.0.1 for the Kafka tests,
# from the broker's jars on Maven Central. Stopped by PID.
#
#   scripts/kafka.sh fetch            resolve the jars (about 45 s the first time; cached)
#   scripts/kafka.sh start DIR [PORT] format a broker in DIR and start it; prints PORT when ready
#   scripts/kafka.sh resume DIR       start again the broker of DIR after a stop (same port and data)
#   scripts/kafka.sh stop DIR         stop the broker started in DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
libs="${TCPINFO_KAFKA_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/tcpinfo-kafka/libs}"

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn (Maven) is required to fetch the broker" >&2; exit 1; }
  mkdir -p "$libs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" </dev/null >&2
  touch "$libs/.complete"
}

start() {
  local dir="$1" port="${2:-0}"
  fetch
  mkdir -p "$dir/data"
  if [ "$port" = 0 ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  fi
  local ctl
  ctl=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  cat >"$dir/log4j2.properties" <<'PROPS'
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=${sys:kafka.logs.dir}/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=%d %p %c: %m%n
PROPS
  local java_opts=(-Xms128m -Xmx512m -Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$dir/log4j2.properties")
  # A cluster id is 16 random bytes in URL-safe base64, which starts with '-' one time in 64:
  # the tool's argument parser then takes it for an option (a test run failed so). Drawn until
  # it does not.
  local cluster_id
  cluster_id="$(python3 -c 'import uuid,base64
while True:
    i = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not i.startswith("-"):
        print(i)
        break')"
  java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" --standalone >"$dir/format.log" 2>&1 \
    || java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >>"$dir/format.log" 2>&1 \
    || { echo "kafka.sh: storage format failed:" >&2; cat "$dir/format.log" >&2; exit 1; }
  launch "$dir" "$port"
}

# Runs the broker formatted in DIR (its data kept) and waits until PORT listens.
launch() {
  local dir="$1" port="$2"
  local java_opts=(-Xms128m -Xmx512m -Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$dir/log4j2.properties")
  nohup java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/broker.pid"
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
      echo "kafka.sh: the broker exited:" >&2; tail -20 "$dir/stdout.log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "kafka.sh: the broker was not listening within 60 s" >&2
  tail -20 "$dir/stdout.log" >&2
  exit 1
}

# Starts again the broker of DIR (stopped with `stop`), same port, same data.
resume() {
  local dir="$1"
  [ -f "$dir/server.properties" ] || { echo "kafka.sh: no broker was started in $dir" >&2; exit 1; }
  local port
  port=$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$dir/server.properties")
  launch "$dir" "$port"
}

stop() {
  local dir="$1"
  [ -f "$dir/broker.pid" ] || return 0
  local pid
  pid=$(cat "$dir/broker.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/broker.pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start "${2:?usage: kafka.sh start DIR [PORT]}" "${3:-0}" ;;
  resume) resume "${2:?usage: kafka.sh resume DIR}" ;;
  stop) stop "${2:?usage: kafka.sh stop DIR}" ;;
  *) echo "usage: kafka.sh fetch | start DIR [PORT] | resume DIR | stop DIR" >&2; exit 2 ;;
esac
