#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/bench-tools.sh: figures for the operator programs, against a real
# MediaWiki and redis-server started privately on loopback (stopped by pid).
#
#   sh bench/bench-tools.sh BUILDDIR [PAGES_PER_LANG]
#
# BUILDDIR is a non-ASan build (../configure CFLAGS=-O2 CXXFLAGS=-O2 && make).
# It seeds PAGES_PER_LANG (default 20) manual pages in each of en de fr ru ja
# zh, then prints: reindex-page --all in direct mode (pages/s, bound by
# MediaWiki's action=parse), --queue (events/s), --rebuild (seconds), and
# freshet-search and freshetctl status per invocation (a whole process:
# start, configuration, analyzer plugins, shards, query, snippets).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
build=$(cd "$1" && pwd)
per=${2:-20}
export FRESHET_ANALYZER_DIR="$build/analyzers/.libs"
work=$(mktemp -d /tmp/freshet-bench-tools.XXXXXX)
redis_pid=""
mw=no
cleanup() {
	[ "$mw" = yes ] && sh tests/integration/mediawiki.sh stop "$work/mw" || true
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis-server --port 0 --unixsocket "$work/redis.sock" --dir "$work" --save "" \
	--appendonly no --logfile "$work/redis.log" &
redis_pid=$!
sh tests/integration/mediawiki.sh start "$work/mw" benchwiki en >/dev/null
mw=yes
api=$(cat "$work/mw/api")
cat >"$work/freshet.conf" <<EOF
[redis]
url = unix://$work/redis.sock
[worker]
data_dir = $work/data
[wiki benchwiki]
api = $api
shards = 4
rate = 0
EOF
export FRESHET_CONFIG="$work/freshet.conf"
php tests/integration/seed-manpages.php "$api" Admin "$(cat "$work/mw/password")" \
	"$per" en de fr ru ja zh >/dev/null
n=$(( $(curl -s "$api?action=query&meta=siteinfo&siprop=statistics&format=json" |
	php -r 'echo json_decode(stream_get_contents(STDIN), true)["query"]["statistics"]["pages"];') ))

now() { date +%s.%N; }
# calc FORMAT EXPRESSION: floating-point arithmetic without bc.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
t0=$(now); "$build/reindex-page" --all --quiet 2>/dev/null; t1=$(now)
echo "reindex-page --all (direct): $n pages in $(calc %.1f "$t1 - $t0") s = $(calc %.1f "$n / ($t1 - $t0)") pages/s"
t0=$(now); "$build/reindex-page" --all --quiet 2>/dev/null; t1=$(now)
echo "reindex-page --all again (documents unchanged): $(calc %.1f "$n / ($t1 - $t0)") pages/s"
t0=$(now); "$build/reindex-page" --all --queue --quiet 2>/dev/null; t1=$(now)
echo "reindex-page --all --queue: $(calc %.0f "$n / ($t1 - $t0)") events/s (listing included)"
t0=$(now); "$build/reindex-page" --rebuild --quiet 2>/dev/null; t1=$(now)
echo "reindex-page --rebuild: $(calc %.1f "$t1 - $t0") s for $n pages"
q=50
t0=$(now)
for _ in $(seq $q); do "$build/freshet-search" --limit 10 'copy files' >/dev/null; done
t1=$(now)
echo "freshet-search 'copy files', top 10 with snippets: $(calc %.1f "($t1 - $t0) * 1000 / $q") ms per run (a whole process)"
t0=$(now)
for _ in $(seq $q); do "$build/freshetctl" status >/dev/null; done
t1=$(now)
echo "freshetctl status: $(calc %.1f "($t1 - $t0) * 1000 / $q") ms per run"
