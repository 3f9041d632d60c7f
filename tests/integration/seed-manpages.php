<?php
// SPDX-License-Identifier: MIT
/*
 * seed-manpages.php: fills a MediaWiki with real text in several languages,
 * taken from Debian's manual pages, through the Action API (so that the
 * Freshet extension sees every page being created, as on a real wiki).
 *
 *   php seed-manpages.php API_URL USER PASSWORD PER_LANG LANG...
 *
 * For each LANG (en de fr ru ja zh) it takes PER_LANG manual pages of
 * section 1 (/usr/share/man[/LANG]/man1, in name order, skipping pages of
 * under 1 KiB), renders each to text with mandoc, turns the manual's
 * section headings into wiki headings and its paragraphs into wiki
 * paragraphs (wrapped in <nowiki> so that no man page text is read as wiki
 * markup), and saves it as the page "<name>.1 (<lang>)" in the category
 * "Manual pages (<lang>)".  Then it sets each page's language with
 * action=setpagelanguage, so the wiki's pages are analyzed in their own
 * language.  Requests run four at a time (php -S serves four workers).
 *
 * Prints one line per language and the page ids as "id<TAB>lang<TAB>title"
 * to the file named by $SEED_LIST (if set).
 */

if ($argc < 6) {
	fwrite(STDERR, "usage: php seed-manpages.php API USER PASSWORD PER_LANG LANG...\n");
	exit(2);
}
[$api, $user, $pass, $per] = array_slice($argv, 1, 4);
$langs = array_slice($argv, 5);
$per = (int)$per;

$share = curl_share_init();
curl_share_setopt($share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);

function req_handle(string $api, array $params, bool $post, $share)
{
	$params['format'] = 'json';
	$params['formatversion'] = '2';
	$ch = curl_init();
	curl_setopt($ch, CURLOPT_SHARE, $share);
	curl_setopt($ch, CURLOPT_COOKIEFILE, '');
	curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
	curl_setopt($ch, CURLOPT_TIMEOUT, 120);
	curl_setopt($ch, CURLOPT_USERAGENT, 'freshet-demo-seeder/0.1');
	if ($post) {
		curl_setopt($ch, CURLOPT_URL, $api);
		curl_setopt($ch, CURLOPT_POST, true);
		curl_setopt($ch, CURLOPT_POSTFIELDS, http_build_query($params));
	} else {
		curl_setopt($ch, CURLOPT_URL, $api . '?' . http_build_query($params));
	}
	return $ch;
}

function call(string $api, array $params, bool $post, $share): array
{
	$ch = req_handle($api, $params, $post, $share);
	$body = curl_exec($ch);
	if ($body === false) {
		fwrite(STDERR, "seed: " . curl_error($ch) . "\n");
		exit(1);
	}
	$j = json_decode($body, true);
	if (!is_array($j)) {
		fwrite(STDERR, "seed: not JSON: " . substr($body, 0, 200) . "\n");
		exit(1);
	}
	return $j;
}

/* Runs many requests, four at a time; returns the decoded answers in order. */
function call_many(string $api, array $list, $share): array
{
	$mh = curl_multi_init();
	$out = [];
	$active = [];
	$next = 0;
	$n = count($list);
	$done = 0;
	while ($done < $n) {
		while (count($active) < 4 && $next < $n) {
			$ch = req_handle($api, $list[$next], true, $share);
			curl_multi_add_handle($mh, $ch);
			$active[(int)$ch] = [$ch, $next];
			$next++;
		}
		curl_multi_exec($mh, $running);
		curl_multi_select($mh, 0.5);
		while (($info = curl_multi_info_read($mh)) !== false) {
			$ch = $info['handle'];
			[, $i] = $active[(int)$ch];
			$body = curl_multi_getcontent($ch);
			$j = json_decode((string)$body, true);
			$out[$i] = is_array($j) ? $j : ['error' => ['code' => 'http',
				'info' => curl_error($ch) ?: substr((string)$body, 0, 200)]];
			curl_multi_remove_handle($mh, $ch);
			curl_close($ch);
			unset($active[(int)$ch]);
			$done++;
		}
	}
	curl_multi_close($mh);
	ksort($out);
	return $out;
}

/* Manual page text -> wikitext. */
function to_wikitext(string $text, string $lang): string
{
	$lines = preg_split('/\r?\n/', $text);
	// Drop the header and footer lines (NAME(1) ... NAME(1)).
	if ($lines && preg_match('/\(\d\w*\)\s*$/u', $lines[0])) {
		array_shift($lines);
	}
	while ($lines && trim(end($lines)) === '') {
		array_pop($lines);
	}
	if ($lines && preg_match('/\(\d\w*\)\s*$/u', end($lines))) {
		array_pop($lines);
	}
	$out = ['__NOTOC__'];
	$para = [];
	$flush = function () use (&$para, &$out) {
		if ($para) {
			$t = implode(' ', $para);
			$t = str_replace('</nowiki>', '', $t);
			$out[] = '<nowiki>' . $t . '</nowiki>';
			$out[] = '';
			$para = [];
		}
	};
	foreach ($lines as $l) {
		if (trim($l) === '') {
			$flush();
			continue;
		}
		// A section heading starts at column 0.
		if (!preg_match('/^\s/u', $l) && mb_strlen($l) < 80) {
			$flush();
			$out[] = '== ' . str_replace(['=', '<', '>'], ['-', '', ''], trim($l)) . ' ==';
			continue;
		}
		$para[] = trim($l);
	}
	$flush();
	$out[] = "[[Category:Manual pages ($lang)]]";
	return implode("\n", $out);
}

/* Picks PER manual pages of section 1 for lang: the everyday commands
 * first (so that every language has ls, cp, grep...), then others in name
 * order. */
function pick(string $lang, int $per): array
{
	$dir = $lang === 'en' ? '/usr/share/man/man1'
		: ($lang === 'zh' ? '/usr/share/man/zh_CN/man1' : "/usr/share/man/$lang/man1");
	$common = ['ls', 'cp', 'mv', 'rm', 'mkdir', 'rmdir', 'cat', 'grep', 'find', 'tar',
		'chmod', 'chown', 'ln', 'du', 'df', 'ps', 'kill', 'sort', 'uniq', 'head',
		'tail', 'wc', 'cut', 'tr', 'date', 'touch', 'sed', 'diff', 'gzip', 'less',
		'man', 'passwd', 'su', 'sudo', 'top', 'free', 'uname', 'who', 'id', 'env'];
	$files = [];
	foreach ($common as $c) {
		if (is_file("$dir/$c.1.gz")) {
			$files[] = "$dir/$c.1.gz";
		}
	}
	$rest = glob("$dir/*.1.gz") ?: [];
	sort($rest);
	$files = array_values(array_unique(array_merge($files, $rest)));
	$picked = [];
	foreach ($files as $f) {
		if (count($picked) >= $per) {
			break;
		}
		if (is_link($f) || filesize($f) < 1024) {
			continue;
		}
		$picked[] = $f;
	}
	return $picked;
}

// Log in.
$t = call($api, ['action' => 'query', 'meta' => 'tokens', 'type' => 'login'], false, $share);
$login = call($api, ['action' => 'clientlogin', 'username' => $user, 'password' => $pass,
	'logintoken' => $t['query']['tokens']['logintoken'],
	'loginreturnurl' => 'http://127.0.0.1/'], true, $share);
if (($login['clientlogin']['status'] ?? '') !== 'PASS') {
	fwrite(STDERR, "seed: login failed: " . json_encode($login) . "\n");
	exit(1);
}
$t = call($api, ['action' => 'query', 'meta' => 'tokens'], false, $share);
$csrf = $t['query']['tokens']['csrftoken'];

$listfile = getenv('SEED_LIST') ?: null;
$list = $listfile ? fopen($listfile, 'w') : null;
$failed = 0;
foreach ($langs as $lang) {
	$edits = [];
	$titles = [];
	foreach (pick($lang, $per) as $f) {
		$text = shell_exec('zcat ' . escapeshellarg($f) .
			' | MANWIDTH=100 mandoc -Tutf8 -Owidth=100 2>/dev/null | col -bx');
		if (!$text || strlen($text) < 200) {
			continue;
		}
		$name = preg_replace('/\.1\.gz$/', '', basename($f));
		$title = ucfirst($name) . ".1 ($lang)";
		$titles[] = $title;
		$edits[] = ['action' => 'edit', 'title' => $title, 'bot' => '1',
			'summary' => "manual page $name(1), $lang",
			'text' => to_wikitext($text, $lang), 'token' => $csrf];
	}
	$t0 = microtime(true);
	$res = call_many($api, $edits, $share);
	$langreq = [];
	foreach ($res as $i => $r) {
		if (($r['edit']['result'] ?? '') !== 'Success') {
			fwrite(STDERR, "seed: $titles[$i]: " . json_encode($r['error'] ?? $r) . "\n");
			$failed++;
			continue;
		}
		if ($list) {
			fprintf($list, "%d\t%s\t%s\n", $r['edit']['pageid'], $lang, $titles[$i]);
		}
		if ($lang !== 'en') {
			$langreq[] = ['action' => 'setpagelanguage', 'title' => $titles[$i],
				'lang' => $lang === 'zh' ? 'zh-hans' : $lang, 'token' => $csrf];
		}
	}
	foreach (call_many($api, $langreq, $share) as $i => $r) {
		if (isset($r['error'])) {
			fwrite(STDERR, "seed: setpagelanguage " . $langreq[$i]['title'] . ": " .
				json_encode($r['error']) . "\n");
			$failed++;
		}
	}
	printf("seed: %-2s %3d pages in %.1f s\n", $lang, count($edits), microtime(true) - $t0);
}
if ($list) {
	fclose($list);
}
exit($failed ? 1 : 0);
