/* SPDX-License-Identifier: MIT */
/*
 * freshet-search.c: freshet-search, the command-line search of a wiki's
 * shards.
 *
 * The front end only: options, the wiki's analyzer, the shards and the
 * output.  The query text becomes a query in query.c (query.h says what
 * the syntax means); --namespace filters it on the boolean XNS<n> terms.
 *
 * The shards of the current generation are opened as one database
 * (shard_set_open); shard_set_search reopens and retries when a concurrent
 * commit made the reader's revision stale, so searching works while the
 * worker writes, and after a rebuild swapped `current`.
 *
 * Exit status: 0 when the search ran (also with no result), 1 when it
 * could not, 2 on a usage or configuration error.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "query.h"
#include "shard.h"
#include "tool.h"
#include "xapian-shim.h"
#include "xmalloc.h"

#define PROG "freshet-search"
#define SNIPPET_BYTES 200
#define MAX_NAMESPACES 64

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--config FILE] --wiki WIKI [--namespace N]...\n"
		"                      [--limit K] [--offset K] [--json] [--language CODE] QUERY\n"
		"\n"
		"Searches every shard of the wiki's live index as one database.\n"
		"QUERY: words (all must match; title and redirect title matches weigh more),\n"
		"\"quoted phrases\" (exact, in order), -word to exclude.\n"
		"\n"
		"  --config FILE     configuration (default: $FRESHET_CONFIG, else built-in defaults)\n"
		"  --wiki WIKI       the wiki to search (may be omitted if only one is configured)\n"
		"  --namespace N     only namespace N (repeatable)\n"
		"  --limit K         results to show (default 10)\n"
		"  --offset K        results to skip (default 0)\n"
		"  --json            one JSON object instead of text\n"
		"  --language CODE   analyze the query as this language (default: the wiki's)\n"
		"  --help            this text\n");
}

struct hit {
	json_t *data;   /* the document data (owned) */
	double score;
	unsigned rank;
	char *snippet;
	char *redirect; /* the redirect title it was found through, or NULL */
};

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

int main(int argc, char **argv)
{
	const char *config = NULL, *wiki_name = NULL, *language = NULL;
	int namespaces[MAX_NAMESPACES];
	size_t n_ns = 0;
	long limit = 10, offset = 0;
	bool json = false;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "wiki", required_argument, NULL, 'w' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "offset", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "language", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'w': wiki_name = optarg; break;
		case 'n':
			if (n_ns == MAX_NAMESPACES) {
				fprintf(stderr, PROG ": at most %d --namespace\n", MAX_NAMESPACES);
				return TOOL_EXIT_USAGE;
			}
			namespaces[n_ns++] = (int)tool_int(PROG, "--namespace", optarg,
							   -2, 1000000);
			break;
		case 'l': limit = (long)tool_int(PROG, "--limit", optarg, 0, 10000); break;
		case 'o': offset = (long)tool_int(PROG, "--offset", optarg, 0, 100000000); break;
		case 'j': json = true; break;
		case 'L': language = optarg; break;
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		default: usage(stderr); return TOOL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, PROG ": no query given\n");
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	/* The remaining arguments form the query (so quoting it is optional). */
	struct buf qs = BUF_INIT;
	for (int i = optind; i < argc; i++) {
		if (i > optind)
			buf_addch(&qs, ' ');
		buf_adds(&qs, argv[i]);
	}

	struct conf *cfg = tool_load_conf(PROG, config);
	const struct conf_wiki *w = tool_wiki(PROG, cfg, wiki_name);
	if (!language)
		language = w->language;
	int rc = TOOL_EXIT_FAIL;
	struct loader *ld = loader_new();
	struct analyzer *an = NULL;
	struct shard_set *set = NULL;
	struct xquery *q = NULL;
	struct xmset *ms = NULL;
	struct hit *hits = NULL;
	size_t n_hits = 0;

	const char *adir = conf_analyzer_dir(cfg);
	if (loader_load_dir(ld, adir) != STATUS_OK) {
		fprintf(stderr, PROG ": analyzers: %s\n", loader_errmsg(ld));
		goto out;
	}
	char *aerr = NULL;
	if (analyzer_open(ld, language, NULL, &an, &aerr) != STATUS_OK) {
		fprintf(stderr, PROG ": no analyzer for language '%s' in %s: %s\n",
			language, adir, aerr ? aerr : "");
		free(aerr);
		goto out;
	}
	char *qerr = NULL;
	enum status st = query_build(an, qs.data, qs.len, 0, &q, &qerr);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": analyzing the query: %s\n", qerr);
		free(qerr);
		goto out;
	}
	query_filter_namespaces(&q, namespaces, n_ns);

	set = shard_set_new(cfg->data_dir, w->id);
	st = shard_set_open(set);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": %s: %s\n", w->id, shard_set_errmsg(set));
		goto out;
	}
	uint64_t estimate = 0;
	if (q) {
		st = shard_set_search(set, q, (unsigned)offset, (unsigned)limit, &ms);
		if (st != STATUS_OK) {
			fprintf(stderr, PROG ": search: %s\n", shard_set_errmsg(set));
			goto out;
		}
		estimate = xmset_estimate(ms);
		n_hits = xmset_size(ms);
	}
	hits = xcalloc(n_hits ? n_hits : 1, sizeof *hits);
	const char *hs = json ? "[" : isatty(STDOUT_FILENO) ? "\033[1m" : "[";
	const char *he = json ? "]" : isatty(STDOUT_FILENO) ? "\033[0m" : "]";
	for (size_t i = 0; i < n_hits; i++) {
		struct xmset_hit h;
		if (xmset_hit(ms, i, &h) != STATUS_OK)
			continue;
		json_error_t jerr;
		hits[i].data = json_loadb(h.data, h.data_len, 0, &jerr);
		if (!hits[i].data)
			hits[i].data = json_object();
		hits[i].score = h.weight;
		hits[i].rank = h.rank;
		const char *text = jstr(hits[i].data, "text");
		const char *lang = jstr(hits[i].data, "language");
		/* Plain text: the output is a terminal or JSON, never HTML. */
		hits[i].snippet = query_snippet(ms, text, strlen(text),
						*lang ? lang : language,
						SNIPPET_BYTES, hs, he, 0);
		hits[i].redirect = query_redirect_match(an, qs.data, qs.len,
							h.data, h.data_len);
	}

	if (json) {
		/* One array of results, best first (empty when nothing matched). */
		json_t *arr = json_array();
		for (size_t i = 0; i < n_hits; i++) {
			json_t *d = hits[i].data, *r = json_object();
			json_object_set_new(r, "rank", json_integer(hits[i].rank + 1));
			json_object_set(r, "page_id", json_object_get(d, "page_id"));
			json_object_set_new(r, "title", json_string(jstr(d, "title")));
			json_object_set(r, "namespace", json_object_get(d, "namespace"));
			json_object_set_new(r, "url", json_string(jstr(d, "url")));
			json_object_set_new(r, "language", json_string(jstr(d, "language")));
			json_object_set(r, "rev_id", json_object_get(d, "rev_id"));
			json_object_set_new(r, "score", json_real(hits[i].score));
			json_object_set_new(r, "snippet", json_string(hits[i].snippet));
			json_object_set_new(r, "redirect_title",
					    hits[i].redirect ? json_string(hits[i].redirect)
							     : json_null());
			json_array_append_new(arr, r);
		}
		char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		puts(s);
		free(s);
		json_decref(arr);
	} else {
		if (n_hits == 0)
			printf("no results for: %s\n", qs.data);
		else
			printf("%zu-%zu of about %llu results for: %s\n", (size_t)offset + 1,
			       (size_t)offset + n_hits, (unsigned long long)estimate, qs.data);
		for (size_t i = 0; i < n_hits; i++) {
			json_t *d = hits[i].data;
			printf("\n%u. %s", hits[i].rank + 1, jstr(d, "title"));
			if (hits[i].redirect)
				printf(" (redirect from %s)", hits[i].redirect);
			printf("  (score %.3f)\n   %s\n   %s\n", hits[i].score,
			       jstr(d, "url"), hits[i].snippet);
		}
	}
	rc = TOOL_EXIT_OK;
out:
	for (size_t i = 0; i < n_hits; i++) {
		json_decref(hits[i].data);
		free(hits[i].snippet);
		free(hits[i].redirect);
	}
	free(hits);
	xmset_free(ms);
	xquery_free(q);
	shard_set_free(set);
	analyzer_close(an);
	loader_free(ld);
	conf_free(cfg);
	buf_release(&qs);
	return rc;
}
