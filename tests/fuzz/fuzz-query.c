/* SPDX-License-Identifier: MIT */
/*
 * fuzz-query.c: libFuzzer target for freshet-searchd's query path.
 *
 * The input is a request as the daemon takes it apart: byte 0 picks the
 * language (none, that is every language of the shards, or one of a few),
 * byte 1 the limit, byte 2 the offset, byte 3 up to three namespaces
 * (bytes 4..6); the rest, up to the first NUL, is the search query and
 * what follows the NUL the completion query.  Both go through
 * searcher_search() and searcher_complete(), the functions
 * freshet-searchd calls, with the daemon's default bounds, against a
 * three-shard generation built at start in a scratch directory from pages
 * in six languages (document_build() with the real analyzer plugins from
 * FRESHET_ANALYZER_DIR).  Checked: no crash or sanitizer report; a call
 * fails only with STATUS_INVALID (a refused query) and a message; results
 * respect the limit, carry data and snippets, and turn into JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "document.h"
#include "fetch.h"
#include "loader.h"
#include "query.h"
#include "search.h"
#include "shard.h"

#define WIKI "fuzzwiki"
#define SHARDS 3

static const char *const page_html[][3] = {
	{ "en", "River otters", "<p>The otters were swimming in the river near the mill.</p>" },
	{ "en", "Otter", "<h2>Food</h2><p>Fish and crabs; an otter's \"kits\".</p>" },
	{ "de", "Alte Häuser", "<p>Die Häuser am Markt sind alt und schön.</p>" },
	{ "fr", "L'église", "<p>Nous avons visité l'église du village.</p>" },
	{ "ru", "Копирование", "<p>Программа копирует каталоги и файлы.</p>" },
	{ "ja", "東京", "<p>東京は日本の首都です。</p>" },
	{ "zh", "城市", "<p>我昨天在图书馆看书。</p>" },
	{ "el", "Θάλασσα", "<p>Η θάλασσα είναι γαλάζια.</p>" },
};
#define N_PAGES (sizeof page_html / sizeof page_html[0])

static const char *const langs[] = { NULL, "en", "de", "fr", "ru", "ja", "zh", "xx" };
#define N_LANGS (sizeof langs / sizeof langs[0])

static struct conf *cfg;
static struct loader *ld;
static struct searcher *se;

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "fuzz-query: %s: %s\n", what, msg);
	abort();
}

/* Writes the pages into a new generation of WIKI under dir. */
static void build_index(const char *dir)
{
	struct shard_set *set = shard_set_new(dir, WIKI);
	struct document_builder *b = document_builder_new(ld);
	char *gen = shard_generation_name();
	if (shard_set_create(set, gen, SHARDS) != STATUS_OK)
		die("create", shard_set_errmsg(set));
	struct shard *sh[SHARDS];
	for (unsigned n = 0; n < SHARDS; n++) {
		char *path = shard_set_path(set, gen, n);
		sh[n] = shard_new();
		if (shard_open(sh[n], path, 0) != STATUS_OK)
			die(path, shard_errmsg(sh[n]));
		free(path);
	}
	for (size_t i = 0; i < N_PAGES; i++) {
		const char *html = page_html[i][2];
		struct fetch_result r = {
			.cls = FETCH_OK,
			.page_id = i + 1,
			.rev_id = 100 + i,
			.title = (char *)page_html[i][1],
			.ns = (int)(i % 2),
			.language = (char *)page_html[i][0],
			.html = (char *)html,
			.html_len = strlen(html),
		};
		struct shard_doc *doc = NULL;
		struct document_analysis an;
		if (document_build(b, &r, "http://wiki.test/w/api.php", 1700000000, &doc, &an) !=
		    STATUS_OK)
			die("document_build", document_builder_errmsg(b));
		struct shard *w = sh[shard_route(i + 1, SHARDS)];
		if (shard_check_analyzer(w, an.language, an.name, an.version) != STATUS_OK ||
		    shard_replace(w, doc) != STATUS_OK)
			die("write", shard_errmsg(w));
		shard_doc_free(doc);
	}
	for (unsigned n = 0; n < SHARDS; n++) {
		if (shard_commit(sh[n], 1) != STATUS_OK)
			die("commit", shard_errmsg(sh[n]));
		shard_free(sh[n]);
	}
	if (shard_set_swap(set, gen) != STATUS_OK)
		die("swap", shard_set_errmsg(set));
	free(gen);
	document_builder_free(b);
	shard_set_free(set);
}

static void init(void)
{
	char dir[] = "/tmp/fuzz-query-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", "failed");
	ld = loader_new();
	if (loader_load_dir(ld, loader_default_dir(NULL)) != STATUS_OK)
		die("analyzers", loader_default_dir(NULL));
	char text[512];
	snprintf(text, sizeof text,
		 "[worker]\ndata_dir = %s\n\n[wiki " WIKI
		 "]\napi = http://wiki.test/w/api.php\n"
		 "language = en\nshards = %d\nnamespaces = 0,1\n",
		 dir, SHARDS);
	cfg = conf_new();
	if (conf_load_string(cfg, "fuzz-query.conf", text) != STATUS_OK)
		die("configuration", conf_errmsg(cfg));
	build_index(dir);
	se = searcher_new(cfg, ld, 0);
	/* The scratch index stays for the run: libFuzzer ends with exit(). */
}

/* A call may fail only by refusing the request, with a message. */
static void check_status(enum status st)
{
	if (st != STATUS_OK &&
	    (st != STATUS_INVALID || !*searcher_errmsg(se) || !*searcher_errcode(se)))
		die(status_str(st), searcher_errmsg(se));
}

/* The daemon sends the answer as JSON text: it must dump.  Consumes j. */
static void dump_answer(json_t *j, const char *what)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		die(what, "the answer is not JSON");
	free(s);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!se)
		init();
	if (size < 7)
		return 0;
	int ns[3];
	size_t n_ns = data[3] % 4;
	for (size_t i = 0; i < n_ns; i++)
		ns[i] = (int)(int8_t)data[4 + i];
	/* Copies without slack, so ASan sees any read past the end. */
	const uint8_t *q = data + 7, *end = data + size;
	const uint8_t *nul = memchr(q, 0, (size_t)(end - q));
	size_t qlen = (size_t)((nul ? nul : end) - q);
	size_t clen = nul ? (size_t)(end - nul - 1) : 0;
	char *query = malloc(qlen + 1), *prefix = malloc(clen + 1);
	memcpy(query, q, qlen);
	query[qlen] = '\0';
	if (clen)
		memcpy(prefix, nul + 1, clen);
	prefix[clen] = '\0';
	/* The daemon's parameters are C strings. */
	clen = strlen(prefix);

	struct search_request rq = {
		.wiki = WIKI,
		.query = query,
		.query_len = qlen,
		.ns = ns,
		.n_ns = n_ns,
		.offset = data[2] % 16,
		.limit = 1 + data[1] % 50,
		.lang = langs[data[0] % N_LANGS],
		.max_query_bytes = (size_t)cfg->searchd_max_query_bytes,
		.max_terms = (size_t)cfg->searchd_max_terms,
		.hi_start = "<span class=\"searchmatch\">",
		.hi_end = "</span>",
		.snippet_flags = QUERY_SNIPPET_HTML,
		.snippet_bytes = 1 + data[0] % 300,
	};
	struct search_result res;
	enum status st = searcher_search(se, &rq, &res);
	check_status(st);
	if (st == STATUS_OK) {
		if (res.n_hits > rq.limit || res.total < res.n_hits)
			die("search", "more hits than the limit or the total");
		for (size_t i = 0; i < res.n_hits; i++)
			if (!res.hits[i].data || !res.hits[i].snippet || !res.hits[i].title_snippet)
				die("search", "a hit without data or snippet");
		dump_answer(search_result_json(&res, &rq), "search");
	}
	search_result_release(&res);

	struct complete_request cq = {
		.wiki = WIKI,
		.query = prefix,
		.query_len = clen,
		.ns = ns,
		.n_ns = n_ns,
		.limit = 1 + data[1] % 20,
		.max_query_bytes = (size_t)cfg->searchd_max_query_bytes,
	};
	struct complete_result cres;
	st = searcher_complete(se, &cq, &cres);
	check_status(st);
	if (st == STATUS_OK) {
		if (cres.n_hits > cq.limit)
			die("complete", "more hits than the limit");
		dump_answer(complete_result_json(&cres, &cq), "complete");
	}
	complete_result_release(&cres);
	free(query);
	free(prefix);
	return 0;
}
