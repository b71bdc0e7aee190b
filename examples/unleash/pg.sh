#!/usr/bin/env bash
# pg.sh starts a throwaway PostgreSQL (Debian's postgresql package) for the
# example: a fresh cluster in a temporary directory, listening on 127.0.0.1
# only, on a free port, trusting local connections (it is reachable from
# this machine only and holds nothing that matters). It prints the
# DATABASE_URL for server.js and the command that stops it.
#
#   eval "$(examples/unleash/pg.sh)"   # sets DATABASE_URL and PG_STOP
#   ...
#   eval "$PG_STOP"                     # stops it and removes its directory
#
# PostgreSQL refuses to run as root: as root, the cluster is made and run
# as the "postgres" user the Debian package creates (runuser), in a
# directory that user owns.
set -euo pipefail
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
[ -x "$bin/initdb" ] || { echo "pg.sh: no $bin/initdb: apt-get install postgresql" >&2; exit 1; }
dir=$(mktemp -d /tmp/latch-pg.XXXXXX)
as=()
if [ "$(id -u)" -eq 0 ]; then
  chmod 0755 "$dir"
  chown postgres:postgres "$dir"
  as=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"${as[@]}" "$bin/initdb" -D "$dir/data" -U unleash --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null ||
  { cat "$dir/postgres.log" >&2; exit 1; }
"${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U unleash unleash
echo "export DATABASE_URL=postgres://unleash@127.0.0.1:$port/unleash"
stop="${as[*]} $bin/pg_ctl -D $dir/data -m fast stop >/dev/null && rm -rf $dir"
printf 'export PG_STOP=%q\n' "$stop"
