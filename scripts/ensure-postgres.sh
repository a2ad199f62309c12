#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use is reachable: ROLLCALL_TEST_DATABASE_URL
# when set, otherwise 127.0.0.1:5432. Starts a local cluster that is installed
# but stopped; otherwise says how to get one and fails.
set -euo pipefail
url="${ROLLCALL_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"

reachable() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$url" -t 3
  else
    # Without client tools, a TCP check of the default address is the best we can do.
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

if reachable; then exit 0; fi

if [ -z "${ROLLCALL_TEST_DATABASE_URL:-}" ] && command -v pg_lsclusters >/dev/null 2>&1; then
  while read -r ver name _; do
    [ -n "$ver" ] || continue
    echo "ensure-postgres: starting local cluster $ver/$name" >&2
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start 2>/dev/null \
      || pg_ctlcluster "$ver" "$name" start || true
  done < <(pg_lsclusters --no-header 2>/dev/null)
  for _ in $(seq 1 30); do reachable && exit 0; sleep 1; done
fi

cat >&2 <<MSG
The test suite needs PostgreSQL and none is reachable at ${url%%\?*}.
  - Debian/Ubuntu: apt-get install postgresql && pg_ctlcluster 15 main start
  - Docker:        docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15
  - or set ROLLCALL_TEST_DATABASE_URL=postgres://user@host:5432/db (the user must be able to CREATE DATABASE)
MSG
exit 1
