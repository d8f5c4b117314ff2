#!/bin/sh
# The official redis image builds redis-server with protected mode off (its Dockerfile patches the
# default), so other containers can connect without a password; Debian's build keeps it on. Match
# the official image, and run from /data as it does.
set -e
if [ "${1:-}" = redis-server ]; then
	shift
	set -- redis-server --protected-mode no "$@"
fi
exec "$@"
