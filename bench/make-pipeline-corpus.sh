#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/make-pipeline-corpus.sh OUTDIR [COUNT]
#
# Builds the corpus of bench/bench-pipeline: COUNT (default 20000) distinct
# real pages, Debian's installed manual pages in several languages (English,
# German, French, Russian, Japanese, Chinese and whatever else is under
# /usr/share/man/<lang>), rendered to HTML by `mandoc -T html`.  Only local
# data is used.  It writes, for page ids 1..COUNT:
#
#   OUTDIR/parse/<id>.json  the answer of api.php?action=parse&pageid=<id>
#                           &formatversion=2&format=json (title, pageid,
#                           revid, text, displaytitle, categories, links,
#                           templates, sections), shaped like bench/make-corpus.sh's
#   OUTDIR/info/<id>.json   that page's entry of an action=query&prop=info
#                           answer followed by a comma (nginx's echo module
#                           concatenates them per request: see bench-pipeline.c)
#   OUTDIR/html/<id>.html   the same HTML as a standalone document with <title>
#                           and lang, for omindex
#   OUTDIR/pages.tsv        id, language, revid, title
#
# Pages are taken in an order that interleaves the languages (sorted by a
# hash of the path), and a page whose rendering holds less than 600 bytes
# of HTML (a `.so` alias, an empty stub) is skipped.  When there are fewer
# distinct pages than COUNT, the rest are variants: page k's first half of
# sections (<h1 class="Sh"> blocks) followed by the second half of page
# k+1's (same language, both real text), titled "A + B".  pages.tsv and the
# summary line say how many of each there are.
#
# Needs mandoc and php-cli.  Rendering runs two mandoc processes at a time.
set -eu

out=${1:?usage: make-pipeline-corpus.sh OUTDIR [COUNT]}
count=${2:-20000}
mkdir -p "$out/parse" "$out/info" "$out/html"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Candidate files "<lang> <path>", languages interleaved by a hash sort.
for d in /usr/share/man /usr/share/man/*; do
	[ -d "$d/man1" ] || continue
	case "$d" in /usr/share/man) lang=en ;; *) lang=${d##*/} ;; esac
	find "$d"/man[1-8] -maxdepth 1 -type f -name '*.gz' 2>/dev/null |
		sed "s|^|$lang |"
done | awk '{ h = 0; for (i = 1; i <= length($2); i++) h = (h * 31 + index("abcdefghijklmnopqrstuvwxyz0123456789._-/ABCDEFGHIJKLMNOPQRSTUVWXYZ", substr($2, i, 1))) % 1000003; print h, $0 }' |
	sort -n -k1,1 -k3,3 | cut -d' ' -f2- > "$work/list"

# 2. Render them (more than COUNT: some are skipped), two at a time.
need=$((count + count / 4 + 100))
head -n "$need" "$work/list" | awk '{ print NR, $2 }' |
	xargs -P 2 -n 2 sh -c 'mandoc -T html -O fragment "$2" > "$0/$1.frag" 2>/dev/null || :' "$work"
head -n "$need" "$work/list" > "$work/list.used"

# 3. Wrap them (php does the JSON encoding and keeps invalid UTF-8 out).
php -d display_errors=stderr -d memory_limit=2G -r '
[$_, $out, $count, $work] = $argv; $count = (int)$count;
$list = file("$work/list.used", FILE_IGNORE_NEW_LINES);
$langmap = ["zh_CN" => "zh-hans", "zh_TW" => "zh-hant", "pt_BR" => "pt-br"];
$pages = [];   /* [lang, title, html] of the distinct pages */
foreach ($list as $k => $line) {
	[$lang, $path] = explode(" ", $line, 2);
	$html = @file_get_contents("$work/" . ($k + 1) . ".frag");
	if ($html === false || strlen($html) < 600) { continue; }
	if (!mb_check_encoding($html, "UTF-8")) { $html = mb_convert_encoding($html, "UTF-8", "ISO-8859-1"); }
	$lang = $langmap[$lang] ?? strtolower($lang);
	$name = preg_replace("/\\.gz$/", "", basename($path));
	$title = "Man:" . $name . ($lang === "en" ? "" : "/" . $lang);
	$pages[] = [$lang, $title, $html];
	if (count($pages) >= $count) { break; }
}
$distinct = count($pages);
/* Variants: sections of page k then page k+1 of the same language. */
function sections($html) {
	$parts = preg_split("/(?=<section class=\"Sh\">)/", $html);
	return count($parts) > 1 ? $parts : [$html];
}
$variants = 0;
for ($k = 0; count($pages) < $count && $k < 100 * $distinct; $k++) {
	$a = $pages[$k % $distinct];
	$b = null;
	for ($j = 1 + intdiv($k, $distinct); $j < $distinct; $j++) {
		$c = $pages[($k + $j) % $distinct];
		if ($c[0] === $a[0]) { $b = $c; break; }
	}
	if ($b === null) { continue; }
	$sa = sections($a[2]); $sb = sections($b[2]);
	$html = implode("", array_slice($sa, 0, max(1, intdiv(count($sa), 2))))
	      . implode("", array_slice($sb, intdiv(count($sb), 2)));
	$pages[] = [$a[0], $a[1] . " + " . substr($b[1], 4), $html];
	$variants++;
}
if (count($pages) < $count) { fwrite(STDERR, "make-pipeline-corpus: only " . count($pages) . " pages\n"); exit(1); }
$tsv = fopen("$out/pages.tsv", "w");
$bylang = [];
foreach ($pages as $i => [$lang, $title, $html]) {
	$id = $i + 1; $rev = $id * 10;
	$links = [];
	if (preg_match_all("/<a class=\"Xr\"[^>]*>([^<]+)<\\/a>/", $html, $m)) {
		foreach (array_slice(array_unique($m[1]), 0, 50) as $t) { $links[] = ["ns" => 0, "title" => "Man:" . html_entity_decode($t), "exists" => true]; }
	}
	$sections = [];
	if (preg_match_all("/<h1 class=\"Sh\" id=\"([^\"]*)\">/", $html, $m)) {
		foreach ($m[1] as $n => $anc) { $sections[] = ["toclevel" => 1, "level" => "2", "line" => $anc, "number" => (string)($n + 1), "index" => (string)($n + 1), "anchor" => $anc]; }
	}
	$sect = preg_match("/\\.([0-9])[^.\\/ ]*(\\/|$| )/", $title, $m) ? $m[1] : "0";
	$doc = ["parse" => [
		"title" => $title, "pageid" => $id, "revid" => $rev,
		"text" => "<div class=\"mw-parser-output\">" . $html . "</div>",
		"displaytitle" => "<span class=\"mw-page-title-main\">" . htmlspecialchars($title) . "</span>",
		"categories" => [["sortkey" => "", "category" => "Manual_section_" . $sect]],
		"links" => $links, "templates" => [], "sections" => $sections,
	]];
	$f = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE;
	file_put_contents("$out/parse/$id.json", json_encode($doc, $f));
	file_put_contents("$out/info/$id.json", json_encode(["pageid" => $id, "ns" => 0, "title" => $title, "pagelanguage" => $lang, "lastrevid" => $rev], $f) . ",");
	file_put_contents("$out/html/$id.html", "<!DOCTYPE html>\n<html lang=\"$lang\"><head><meta charset=\"utf-8\"><title>" . htmlspecialchars($title) . "</title></head><body>\n" . mb_convert_encoding($html, "UTF-8", "UTF-8") . "\n</body></html>\n");
	fwrite($tsv, "$id\t$lang\t$rev\t$title\n");
	$bylang[$lang] = ($bylang[$lang] ?? 0) + 1;
}
fclose($tsv);
arsort($bylang);
$l = []; foreach ($bylang as $k => $v) { $l[] = "$k $v"; }
echo "make-pipeline-corpus: $count pages ($distinct distinct man pages, $variants variants combining sections of two pages): " . implode(", ", $l) . "\n";
' "$out" "$count" "$work"
echo "make-pipeline-corpus: $out ($(du -sh "$out" | cut -f1))"
