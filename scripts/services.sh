#!/usr/bin/env bash
# Make sure Redis and PostgreSQL answer on 127.0.0.1; start the local ones if they are installed but down.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 6379; then
  if command -v redis-server >/dev/null; then
    echo "starting redis-server"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  else
    echo "Redis is not running on 127.0.0.1:6379 and redis-server is not installed" >&2; exit 1
  fi
fi
if ! up 5432; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  else
    echo "PostgreSQL is not running on 127.0.0.1:5432 and no local cluster is installed" >&2; exit 1
  fi
fi
for _ in $(seq 50); do up 6379 && up 5432 && exit 0; sleep 0.2; done
echo "Redis or PostgreSQL did not come up" >&2; exit 1
