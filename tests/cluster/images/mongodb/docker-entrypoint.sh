#!/bin/sh
# mongod's command line, run by FerretDB (SQLite backend). Like the official
# mongo image: a command that is `mongod` or starts with an option is mongod's
# (listening on every address unless --bind_ip says otherwise); anything else
# is executed as it is.
#
# mongod option            FerretDB
#   --bind_ip_all            --listen-addr=0.0.0.0:<port>
#   --bind_ip A[,B...]       --listen-addr=A:<port> (the first address only)
#   --port N                 the port of --listen-addr (default 27017)
#   --dbpath P               --sqlite-url=file:P/ --state-dir=P (default /data/db)
#   --wiredTigerCacheSizeGB  ignored: SQLite has no such cache
#   --auth, --quiet          ignored (see below for authentication)
# Any other option is refused, so that a chart change is not silently ignored.
#
# MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD (both or neither):
# FerretDB's SCRAM authentication (--test-enable-new-auth) with that user made
# in the admin database when the data folder is new (FerretDB's --setup-*),
# as the official image makes its root user on first start. Without them,
# FerretDB 1.24 accepts no SCRAM at all (only PLAIN, with any password).
set -eu

case "${1:-mongod}" in
    mongod) [ $# -gt 0 ] && shift ;;
    -*) ;;
    *) exec "$@" ;;
esac

address=0.0.0.0
port=27017
dbpath=/data/db
while [ $# -gt 0 ]; do
    case "$1" in
        --bind_ip_all) address=0.0.0.0 ;;
        --bind_ip) address="${2%%,*}"; shift ;;
        --bind_ip=*) address="${1#*=}"; address="${address%%,*}" ;;
        --port) port="$2"; shift ;;
        --port=*) port="${1#*=}" ;;
        --dbpath) dbpath="$2"; shift ;;
        --dbpath=*) dbpath="${1#*=}" ;;
        --wiredTigerCacheSizeGB) shift ;;
        --wiredTigerCacheSizeGB=* | --auth | --quiet) ;;
        *) echo "$0: mongod option $1 has no FerretDB equivalent here" >&2; exit 64 ;;
    esac
    shift
done

user="${MONGO_INITDB_ROOT_USERNAME:-}"
password="${MONGO_INITDB_ROOT_PASSWORD:-}"
if [ -n "$user" ] && [ -n "$password" ]; then
    # The password goes by environment, not on the command line.
    export FERRETDB_TEST_ENABLE_NEW_AUTH=true
    export FERRETDB_SETUP_DATABASE=admin
    export FERRETDB_SETUP_USERNAME="$user"
    export FERRETDB_SETUP_PASSWORD="$password"
elif [ -n "$user" ] || [ -n "$password" ]; then
    echo "$0: set both MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD, or neither" >&2
    exit 64
fi
unset MONGO_INITDB_ROOT_PASSWORD

exec ferretdb \
    --handler=sqlite \
    "--sqlite-url=file:${dbpath%/}/" \
    "--state-dir=$dbpath" \
    "--listen-addr=$address:$port" \
    --telemetry=disable
