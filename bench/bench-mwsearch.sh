#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/bench-mwsearch.sh: Special:Search latency through MediaWiki, with
# the Freshet extension's search backend (freshet-searchd) against
# MediaWiki's own SQLite search, on the same wiki in one run.
#
#   sh bench/bench-mwsearch.sh BUILDDIR [REQUESTS [PAGES_PER_LANG]]
#
# BUILDDIR is a non-ASan build (../configure CFLAGS=-O2 CXXFLAGS=-O2 && make).
# It starts a private redis-server, MediaWiki (the extension loaded) and
# freshet-searchd on loopback (all stopped by pid), seeds PAGES_PER_LANG
# (default 20) manual pages in each of en de fr ru ja zh, indexes them with
# reindex-page, then asks Special:Search REQUESTS times (default 200) per
# backend, a fixed list of queries in those languages in turn, the two
# backends alternating request by request so that both see the same load.
# The backend is chosen per request: the wiki's settings make
# $wgSearchType 'freshet' when the request carries bench_backend=freshet
# (a parameter Special:Search ignores), MediaWiki's default otherwise, so
# the edits that seed the wiki fill MediaWiki's own index too.  Each request is timed by curl
# (time_total: the whole page, as a reader's browser gets it, without
# curl's own start); every answer must be HTTP 200, and the pages that
# list results are counted, so a backend that fails is seen, not timed.
# The same searches asked of freshet-searchd directly (top 20, as the
# extension asks) give the service's share of a freshet page's time.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
[ $# -ge 1 ] || { echo "usage: sh bench/bench-mwsearch.sh BUILDDIR [REQUESTS [PAGES_PER_LANG]]" >&2; exit 2; }
build=$(cd "$1" && pwd)
requests=${2:-200}
per=${3:-20}
export FRESHET_ANALYZER_DIR="$build/analyzers/.libs"
work=$(mktemp -d /tmp/freshet-bench-mwsearch.XXXXXX)
redis_pid=""
searchd_pid=""
mw=no
cleanup() {
	[ "$mw" = yes ] && sh tests/integration/mediawiki.sh stop "$work/mw" || true
	[ -n "$searchd_pid" ] && kill "$searchd_pid" 2>/dev/null && wait "$searchd_pid" 2>/dev/null
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr(strrchr($n, ":"), 1), "\n";'
}
sport=$(free_port)

redis-server --port 0 --unixsocket "$work/redis.sock" --dir "$work" --save "" \
	--appendonly no --logfile "$work/redis.log" &
redis_pid=$!
FRESHET_MW_REDIS_SOCKET="$work/redis.sock" FRESHET_MW_SETTINGS="
\$wgFreshetSearchUrl = 'http://127.0.0.1:$sport';
\$wgFreshetSearchWiki = 'benchwiki';
\$wgSearchType = ( \$_GET['bench_backend'] ?? '' ) === 'freshet' ? 'freshet' : null;" \
	sh tests/integration/mediawiki.sh start "$work/mw" benchwiki en >/dev/null
mw=yes
api=$(cat "$work/mw/api")
base=${api%/api.php}
cat >"$work/freshet.conf" <<EOF
[redis]
url = unix://$work/redis.sock
[worker]
data_dir = $work/data
[searchd]
listen = 127.0.0.1:$sport
[wiki benchwiki]
api = $api
shards = 4
rate = 0
EOF
export FRESHET_CONFIG="$work/freshet.conf"
php tests/integration/seed-manpages.php "$api" Admin "$(cat "$work/mw/password")" \
	"$per" en de fr ru ja zh >/dev/null
"$build/reindex-page" --all --quiet 2>/dev/null
"$build/freshet-searchd" >"$work/searchd.log" 2>&1 &
searchd_pid=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$sport/healthz"; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat "$work/searchd.log" >&2; echo "freshet-searchd did not start" >&2; exit 1; }
	sleep 0.1
done
n=$(( $(curl -s "$api?action=query&meta=siteinfo&siprop=statistics&format=json" |
	php -r 'echo json_decode(stream_get_contents(STDIN), true)["query"]["statistics"]["pages"];') ))

# Words every language's manual pages use, percent-encoded as a browser
# sends them: file, copy files, directory, Datei, fichier, файл, ファイル, 文件.
queries="file copy+files directory Datei fichier %D1%84%D0%B0%D0%B9%D0%BB %E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB %E6%96%87%E4%BB%B6"
nq=$(echo $queries | wc -w)

# ask BACKEND QUERY: one Special:Search request; appends "seconds hits" to
# $work/BACKEND.times (hits: 1 if the page lists results).
ask() {
	extra=""
	[ "$1" = freshet ] && extra="&bench_backend=freshet"
	out=$(curl -s -o "$work/page.html" -w '%{http_code} %{time_total}' \
		"$base/index.php?title=Special:Search&search=$2&fulltext=1&ns0=1$extra")
	code=${out% *}
	[ "$code" = 200 ] || { echo "Special:Search ($1, $2) answered HTTP $code" >&2; exit 1; }
	hits=0
	grep -q 'mw-search-result-heading' "$work/page.html" && hits=1
	echo "${out#* } $hits $2" >>"$work/$1.times"
}

# direct QUERY: the same search asked of freshet-searchd itself, as the
# extension asks it (its share of a freshet page's time).
direct() {
	out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
		"http://127.0.0.1:$sport/v1/benchwiki/search?q=$1&limit=20")
	[ "${out% *}" = 200 ] || { echo "freshet-searchd ($1) answered HTTP ${out% *}" >&2; exit 1; }
	echo "${out#* } 1 $1" >>"$work/searchd.times"
}

# One unmeasured round of every query on both backends: caches warm,
# php -S workers started.
for q in $queries; do ask freshet "$q"; ask db "$q"; done
rm -f "$work/freshet.times" "$work/db.times"

k=0
while [ $k -lt "$requests" ]; do
	q=$(echo $queries | cut -d' ' -f$((k % nq + 1)))
	ask freshet "$q"
	ask db "$q"
	direct "$q"
	k=$((k + 1))
done

# report BACKEND LABEL: p50, p99 and mean in ms, pages with results.
report() {
	sort -n "$work/$1.times" | awk -v label="$2" '
		{ t[NR] = $1; s += $1; h += $2 }
		END {
			p50 = t[int((NR - 1) * 0.50) + 1]; p99 = t[int((NR - 1) * 0.99) + 1]
			printf "  %-34s p50 %6.1f ms  p99 %6.1f ms  mean %6.1f ms  (%d/%d pages with results)\n",
				label, p50 * 1000, p99 * 1000, s / NR * 1000, h, NR
		}'
	none=$(awk '$2 == 0 { print $3 }' "$work/$1.times" | sort -u | tr '\n' ' ')
	[ -z "$none" ] || echo "    no results for: $none"
}
echo "Special:Search, $requests requests per backend ($nq queries in 6 languages, alternating backends), $n pages:"
report freshet "freshet (freshet-searchd, 4 shards)"
report db "MediaWiki's own search (SQLite)"
report searchd "freshet-searchd asked directly"
load=$(cut -d' ' -f1 /proc/loadavg)
echo "load average at the end: $load"
