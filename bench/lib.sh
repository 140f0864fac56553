# Shared by bench/memory.sh and bench/purge.sh (sourced): a work folder cleaned up on exit, ports,
# and the upstream that answers at once.

# bench_dir NAME: sets `dir` to a new folder under /tmp and `pids` to the processes to stop; on exit
# those, the upstream's and Varnish's pid files in it, and the folder itself go.
bench_dir() {
  dir=$(mktemp -d "/tmp/$1.XXXXXX"); chmod 755 "$dir"
  pids=()
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in up.pid varnish.pid nginx.pid; do [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null || true; done
  sleep 0.5; rm -rf "$dir"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; exit 1; }

# start_fixed_upstream DIR PORT [HEADER_LINES]: an nginx that answers every path at once with 1 KiB,
# `Cache-Control: max-age=86400` and any further `add_header` lines given (the sample upstream in
# Python would make filling hundreds of thousands of entries take minutes). Its pid is in DIR/up.pid.
start_fixed_upstream() {
  local dir=$1 port=$2 extra=${3:-}
  local body; body=$(head -c 1024 /dev/zero | tr '\0' 'x')
  mkdir -p "$dir/up-tmp"
  cat > "$dir/up.conf" <<UPSTREAM
worker_processes 1;
pid $dir/up.pid;
error_log $dir/up-error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 10000000; keepalive_timeout 600s;
  client_body_temp_path $dir/up-tmp; proxy_temp_path $dir/up-tmp; fastcgi_temp_path $dir/up-tmp;
  uwsgi_temp_path $dir/up-tmp; scgi_temp_path $dir/up-tmp;
  server {
    listen 127.0.0.1:$port;
    location / { default_type text/plain; add_header Cache-Control "max-age=86400"; $extra return 200 "$body"; }
  }
}
UPSTREAM
  nginx -c "$dir/up.conf"
}

# start_postgres: a PostgreSQL cluster of the bench's own (Debian's server, run as the postgres
# user, which it requires; its data in a folder that user can reach), password authentication on a
# free loopback port. Sets `pg_url` (database `bench`) and `pg_data`; stop_postgres stops it.
start_postgres() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bin" ] || { echo "bench: PostgreSQL is not installed (make deps)" >&2; exit 1; }
  pg_data=$(mktemp -d /tmp/te-bench-pg.XXXXXX); local port password; port=$(free_port)
  password=$(openssl rand -hex 16)
  as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pg_data"
  (umask 077; echo "$password" > "$pg_data/pw"); [ "$(id -u)" = 0 ] && chown postgres "$pg_data/pw"
  as_postgres "$bin/initdb" -D "$pg_data/db" -U te --pwfile="$pg_data/pw" -A scram-sha-256 >"$pg_data.log" 2>&1
  rm -f "$pg_data/pw"
  as_postgres "$bin/pg_ctl" -D "$pg_data/db" -l "$pg_data/db/server.log" -w \
    -o "-p $port -k $pg_data -c listen_addresses=127.0.0.1" start >>"$pg_data.log" 2>&1 \
    || { stop_postgres; echo "bench: PostgreSQL did not start" >&2; exit 1; }
  PGPASSWORD=$password as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U te bench \
    || { stop_postgres; echo "bench: createdb failed" >&2; exit 1; }
  pg_url="postgres://te:$password@127.0.0.1:$port/bench"
}
stop_postgres() {
  [ -n "${pg_data:-}" ] || return 0
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$pg_data/db" -m fast -w stop >/dev/null 2>&1 || true
  else "$bin/pg_ctl" -D "$pg_data/db" -m fast -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$pg_data" "$pg_data.log"
}
