#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/make-corpus.sh OUTDIR [COUNT] [LANG]
#
# Builds a corpus of real rendered pages for the benchmarks: Debian's man
# pages (packages manpages, manpages-de, ...) rendered to HTML by mandoc,
# each wrapped in an answer shaped like MediaWiki's
#   api.php?action=parse&formatversion=2&format=json
# ({"parse":{"title","pageid","revid","text","displaytitle","categories",
# "links","templates","sections"}}), written to OUTDIR/<pageid>.json with
# page ids 1..COUNT.  COUNT defaults to 20000 (the pipeline benchmark's
# size); LANG picks /usr/share/man/<LANG> ("" = English, the default).
# Also writes OUTDIR/info.json: the action=query&prop=info answer for every
# page (for static servers).  Needs mandoc and php-cli (both in scripts/setup).
set -eu

out=${1:?usage: make-corpus.sh OUTDIR [COUNT] [LANG]}
count=${2:-20000}
lang=${3:-}
mandir=/usr/share/man${lang:+/$lang}

mkdir -p "$out"
list=$(mktemp)
trap 'rm -f "$list"' EXIT
# Sections 1-8, largest pages first is not needed: take them in name order,
# repeating the list when there are fewer pages than COUNT.
find "$mandir"/man[1-8] -maxdepth 1 -type f -name '*.gz' 2>/dev/null | sort > "$list"
have=$(wc -l < "$list")
[ "$have" -gt 0 ] || { echo "make-corpus: no man pages under $mandir" >&2; exit 1; }

# php does the JSON encoding (and keeps invalid UTF-8 out: mandoc output of
# a latin-1 page is converted with mb_convert_encoding).
php -d display_errors=stderr -r '
$out = $argv[1]; $count = (int)$argv[2]; $files = file($argv[3], FILE_IGNORE_NEW_LINES);
$info = [];
for ($id = 1; $id <= $count; $id++) {
	$f = $files[($id - 1) % count($files)];
	$html = shell_exec("mandoc -T html -O fragment " . escapeshellarg($f) . " 2>/dev/null");
	if ($html === null || $html === false || $html === "") { $html = "<p>empty</p>"; }
	if (!mb_check_encoding($html, "UTF-8")) { $html = mb_convert_encoding($html, "UTF-8", "ISO-8859-1"); }
	$name = preg_replace("/\\.gz$/", "", basename($f));
	$title = "Man:" . $name;
	$links = [];
	if (preg_match_all("/<a class=\"Xr\"[^>]*>([^<]+)<\\/a>/", $html, $m)) {
		foreach (array_slice(array_unique($m[1]), 0, 50) as $t) { $links[] = ["ns" => 0, "title" => "Man:" . html_entity_decode($t), "exists" => true]; }
	}
	$sections = [];
	if (preg_match_all("/<h1 class=\"Sh\" id=\"([^\"]*)\">/", $html, $m)) {
		foreach ($m[1] as $i => $a) { $sections[] = ["toclevel" => 1, "level" => "2", "line" => $a, "number" => (string)($i + 1), "index" => (string)($i + 1), "anchor" => $a]; }
	}
	$sect = preg_replace("/^.*\\.([0-9])[^.]*$/", "$1", $name);
	$doc = ["parse" => [
		"title" => $title, "pageid" => $id, "revid" => $id * 10,
		"text" => "<div class=\"mw-parser-output\">" . $html . "</div>",
		"displaytitle" => "<span class=\"mw-page-title-main\">" . htmlspecialchars($title) . "</span>",
		"categories" => [["sortkey" => "", "category" => "Manual_section_" . $sect]],
		"links" => $links, "templates" => [], "sections" => $sections,
	]];
	file_put_contents("$out/$id.json", json_encode($doc, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE));
	$info[] = ["pageid" => $id, "ns" => 0, "title" => $title, "pagelanguage" => "en", "lastrevid" => $id * 10];
}
file_put_contents("$out/info.json", json_encode(["batchcomplete" => true, "query" => ["pages" => $info]], JSON_UNESCAPED_SLASHES));
' "$out" "$count" "$list"
echo "make-corpus: $count pages in $out ($(du -sh "$out" | cut -f1))"
