#!/usr/bin/env bash
# Starts the real servers the test suite needs and writes their addresses to $RUN/env:
#   redis-server (Debian package) on a free loopback port,
#   PostgreSQL (Debian package) as the postgres user, with a password and TLS, on a free loopback port,
#   a CA and a server certificate made now, a second unrelated CA, and an HTTPS server using them,
#   the small test MMDB generated with mmdb-writer.
# `test-env.sh start RUN` / `test-env.sh stop RUN`. Nothing is left running after stop.
set -euo pipefail
cmd=$1; run=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")" && pwd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "test-env: nothing listening on port $1 ($2)" >&2; return 1
}

case "$cmd" in
start)
  rm -rf "$run"; mkdir -p "$run/tls" "$run/www" "$run/redis"
  # Redis: the real server, on a free port, no persistence.
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --databases 32 --dir "$run/redis" \
    --daemonize yes --pidfile "$run/redis.pid" --logfile "$run/redis.log"
  wait_port "$redis_port" redis-server
  # TLS: a CA and a server certificate for 127.0.0.1/localhost, and an unrelated CA.
  (cd "$run/tls"
   openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=TenantEdge Test CA" -keyout ca.key -out ca.pem 2>/dev/null
   openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Other CA" -keyout other-ca.key -out other-ca.pem 2>/dev/null
   openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
   printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext.cnf
   openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.pem 2>/dev/null)
  echo "hello over tls" > "$run/www/hello.txt"
  https_port=$(free_port)
  python3 "$here/https_server.py" "$https_port" "$run/tls/server.pem" "$run/tls/server.key" "$run/www" >"$run/https.log" 2>&1 &
  echo $! > "$run/https.pid"
  wait_port "$https_port" https-server
  # PostgreSQL (Debian's server): a cluster of the run's own, made with initdb as the postgres user
  # (the server refuses to run as root) in a folder that user can reach, on a free loopback port,
  # password authentication, TLS with the run's own certificate.
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  pg_data=$(mktemp -d /tmp/te-pg.XXXXXX); echo "$pg_data" > "$run/pg.dir"
  pg_port=$(free_port); pg_password=$(openssl rand -hex 16)
  as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pg_data"
  (umask 077; echo "$pg_password" > "$pg_data.pw"); [ "$(id -u)" = 0 ] && chown postgres "$pg_data.pw"
  as_postgres "$pg_bin/initdb" -D "$pg_data/db" -U te --pwfile="$pg_data.pw" -A scram-sha-256 >"$run/pg-initdb.log" 2>&1
  rm -f "$pg_data.pw"
  cp "$run/tls/server.pem" "$pg_data/server.pem"; cp "$run/tls/server.key" "$pg_data/server.key"
  chmod 600 "$pg_data/server.key"; [ "$(id -u)" = 0 ] && chown postgres "$pg_data/server.pem" "$pg_data/server.key"
  # A disposable cluster that is never killed: no fsync, so commits wait on no disk while the rest
  # of the suite (a browser among it) keeps both cores busy; the suite checks behaviour, not disks.
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data/db" -l "$pg_data/server.log" -w \
    -o "-p $pg_port -k $pg_data -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=$pg_data/server.pem -c ssl_key_file=$pg_data/server.key -c fsync=off -c full_page_writes=off" \
    start >"$run/pg-start.log" 2>&1
  wait_port "$pg_port" postgresql
  # A second cluster that tests may stop and start (`$run/pg-restart.sh stop|start`), so a restart
  # never disturbs the suites using the first one. Password authentication, no TLS: its tests are
  # about the outage.
  pg2_data=$(mktemp -d /tmp/te-pg2.XXXXXX); echo "$pg2_data" > "$run/pg2.dir"; pg2_port=$(free_port)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pg2_data"
  (umask 077; echo "$pg_password" > "$pg2_data.pw"); [ "$(id -u)" = 0 ] && chown postgres "$pg2_data.pw"
  as_postgres "$pg_bin/initdb" -D "$pg2_data/db" -U te --pwfile="$pg2_data.pw" -A scram-sha-256 \
    >>"$run/pg-initdb.log" 2>&1
  rm -f "$pg2_data.pw"
  cat > "$run/pg-restart.sh" <<CTL
#!/usr/bin/env bash
# stop|start the restartable PostgreSQL of this test run. A test process may hand its children
# SIGCHLD ignored, which no shell can undo and which keeps pg_ctl waiting: env restores it.
if [ "\$(id -u)" = 0 ]; then run() { env --default-signal=CHLD runuser -u postgres -- "\$@" </dev/null; }
else run() { env --default-signal=CHLD "\$@" </dev/null; }; fi
case "\$1" in
  stop) run "$pg_bin/pg_ctl" -D "$pg2_data/db" -m immediate -w stop ;;
  start) run "$pg_bin/pg_ctl" -D "$pg2_data/db" -l "$pg2_data/server.log" -w \
           -o "-p $pg2_port -k $pg2_data -c listen_addresses=127.0.0.1" start ;;
esac
CTL
  chmod +x "$run/pg-restart.sh"; "$run/pg-restart.sh" start >"$run/pg2-start.log" 2>&1
  wait_port "$pg2_port" postgresql-restartable
  # GeoIP: the project's own small database.
  python3 "$here/make_test_mmdb.py" "$run/test-city.mmdb"
  python3 "$here/make_test_mmdb.py" "$run/test-city-swapped.mmdb" --swapped
  shared_geoip=""
  for candidate in "$here/../../../shared/geoip" "$here/../../../../shared/geoip"; do
    if [ -f "$candidate/GeoIP2-City-Test.mmdb" ]; then shared_geoip=$(cd "$candidate" && pwd); break; fi
  done
  touch "$run/env"; chmod 600 "$run/env"  # it holds the database password
  cat > "$run/env" <<ENV
export TE_TEST_REDIS_PORT=$redis_port
export TE_TEST_POSTGRES_URL=postgres://te:$pg_password@127.0.0.1:$pg_port/postgres
export TE_TEST_POSTGRES_RESTARTABLE_URL=postgres://te:$pg_password@127.0.0.1:$pg2_port/postgres
export TE_TEST_POSTGRES_RESTART=$run/pg-restart.sh
export TE_TEST_HTTPS_URL=https://127.0.0.1:$https_port/hello.txt
export TE_TEST_CA_FILE=$run/tls/ca.pem
export TE_TEST_OTHER_CA_FILE=$run/tls/other-ca.pem
export TE_TEST_SERVER_CERT=$run/tls/server.pem
export TE_TEST_SERVER_KEY=$run/tls/server.key
export TE_TEST_MMDB=$run/test-city.mmdb
export TE_TEST_MMDB_SWAPPED=$run/test-city-swapped.mmdb
export TE_SHARED_GEOIP=$shared_geoip
ENV
  echo "test-env: redis on $redis_port, postgresql on $pg_port, https on $https_port, mmdb generated${shared_geoip:+, shared GeoIP at $shared_geoip}"
  ;;
stop)
  if [ -f "$run/pg.dir" ]; then
    pg_data=$(cat "$run/pg.dir"); pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data/db" -m fast -w stop >/dev/null 2>&1 || true
    else "$pg_bin/pg_ctl" -D "$pg_data/db" -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$pg_data"
  fi
  if [ -f "$run/pg2.dir" ]; then
    [ -x "$run/pg-restart.sh" ] && "$run/pg-restart.sh" stop >/dev/null 2>&1 || true
    rm -rf "$(cat "$run/pg2.dir")"
  fi
  [ -f "$run/https.pid" ] && kill "$(cat "$run/https.pid")" 2>/dev/null || true
  [ -f "$run/redis.pid" ] && kill "$(cat "$run/redis.pid")" 2>/dev/null || true
  ;;
esac
