/* SPDX-License-Identifier: MIT */
/*
 * freshet-search.c: freshet-search, the command-line search of a wiki's
 * shards.
 *
 * The front end only: options, the output.  The query path (the wiki's
 * shards, the analyzers, the query, the snippets) is search.c's, shared
 * with freshet-searchd: the query text becomes a query in query.c
 * (query.h says what the syntax means), analyzed in every language the
 * shards hold unless --language names one; --namespace filters it on the
 * boolean XNS<n> terms.
 *
 * The shards of the current generation are opened as one database; a
 * search reopens and retries when a concurrent commit made the reader's
 * revision stale, so searching works while the worker writes, and after a
 * rebuild swapped `current`.
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
#include "query.h"
#include "log.h"
#include "search.h"
#include "tool.h"

#define PROG "freshet-search"
#define SNIPPET_BYTES 200
#define MAX_NAMESPACES 64

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG
		" [--config FILE] --wiki WIKI [--namespace N]...\n"
		"                      [--limit K] [--offset K] [--json] [--language CODE]\n"
		"                      [--max-terms N] [--] QUERY\n"
		"\n"
		"Searches every shard of the wiki's live index as one database.\n"
		"QUERY: words (all must match; title and redirect title matches weigh\n"
		"more), \"quoted phrases\" (exact, in order), -word to exclude.  Put -- before\n"
		"a query that starts with -word.  The query is analyzed in every\n"
		"language the shards hold (stems of a language match its pages only;\n"
		"exact words rank above other inflections).\n"
		"\n"
		"  --config FILE     configuration (default: $FRESHET_CONFIG, else built-in defaults)\n"
		"  --wiki WIKI       the wiki to search (may be omitted if only one is configured)\n"
		"  --namespace N     only namespace N (repeatable)\n"
		"  --limit K         results to show (default 10)\n"
		"  --offset K        results to skip (default 0)\n"
		"  --json            one JSON object instead of text\n"
		"  --language CODE   analyze the query as this language only (default: every\n"
		"                    language the wiki's shards hold)\n"
		"  --max-terms N     refuse a query of more than N words, phrases and\n"
		"                    exclusions (default 32)\n"
		"  --help            this text\n");
}

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
	long limit = 10, offset = 0, max_terms = QUERY_MAX_TERMS;
	bool json = false;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "wiki", required_argument, NULL, 'w' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "offset", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "language", required_argument, NULL, 'L' },
		{ "max-terms", required_argument, NULL, 'm' },
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
		case 'm':
			max_terms = (long)tool_int(PROG, "--max-terms", optarg, 1, 1000000);
			break;
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
	int rc = TOOL_EXIT_FAIL;
	struct loader *ld = loader_new();
	struct searcher *se = NULL;
	struct search_result res = { 0 };

	const char *adir = conf_analyzer_dir(cfg);
	if (loader_load_dir(ld, adir) != STATUS_OK) {
		fprintf(stderr, PROG ": analyzers: %s\n", loader_errmsg(ld));
		goto out;
	}
	se = searcher_new(cfg, ld, 0);
	const char *hs = json ? "[" : isatty(STDOUT_FILENO) ? "\033[1m" : "[";
	const char *he = json ? "]" : isatty(STDOUT_FILENO) ? "\033[0m" : "]";
	/* Plain text snippets: the output is a terminal or JSON, never HTML. */
	struct search_request rq = {
		.wiki = w->id,
		.query = qs.data ? qs.data : "",
		.query_len = qs.len,
		.ns = namespaces,
		.n_ns = n_ns,
		.offset = (unsigned)offset,
		.limit = (unsigned)limit,
		.lang = language,
		.max_terms = (size_t)max_terms,
		.hi_start = hs,
		.hi_end = he,
		.snippet_bytes = SNIPPET_BYTES,
	};
	enum status st = searcher_search(se, &rq, &res);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": %s\n", searcher_errmsg(se));
		if (st == STATUS_INVALID)
			rc = TOOL_EXIT_USAGE;
		goto out;
	}

	if (json) {
		/* One array of results, best first (empty when nothing matched). */
		json_t *arr = json_array();
		for (size_t i = 0; i < res.n_hits; i++) {
			json_t *d = res.hits[i].data, *r = json_object();
			json_object_set_new(r, "rank", json_integer(res.hits[i].rank + 1));
			json_object_set(r, "page_id", json_object_get(d, "page_id"));
			json_object_set_new(r, "title", json_string(jstr(d, "title")));
			json_object_set(r, "namespace", json_object_get(d, "namespace"));
			json_object_set_new(r, "url", json_string(jstr(d, "url")));
			json_object_set_new(r, "language", json_string(jstr(d, "language")));
			json_object_set(r, "rev_id", json_object_get(d, "rev_id"));
			json_object_set_new(r, "score", json_real(res.hits[i].score));
			json_object_set_new(r, "snippet", json_string(res.hits[i].snippet));
			const char *via = res.hits[i].redirect_title;
			json_object_set_new(r, "redirect_title",
					    via ? json_string(via) : json_null());
			json_array_append_new(arr, r);
		}
		char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		puts(s);
		free(s);
		json_decref(arr);
	} else {
		if (res.n_hits == 0)
			printf("no results for: %s\n", qs.data);
		else
			printf("%zu-%zu of %s%llu results for: %s\n", (size_t)offset + 1,
			       (size_t)offset + res.n_hits, res.total_exact ? "" : "at least ",
			       (unsigned long long)res.total, qs.data);
		for (size_t i = 0; i < res.n_hits; i++) {
			json_t *d = res.hits[i].data;
			const char *via = res.hits[i].redirect_title;
			printf("\n%u. %s%s%s%s  (score %.3f)\n   %s\n   %s\n",
			       res.hits[i].rank + 1, jstr(d, "title"),
			       via ? " (redirect from " : "", via ? via : "",
			       via ? ")" : "", res.hits[i].score, jstr(d, "url"),
			       res.hits[i].snippet);
		}
	}
	rc = TOOL_EXIT_OK;
out:
	search_result_release(&res);
	searcher_free(se);
	loader_free(ld);
	conf_free(cfg);
	buf_release(&qs);
	return rc;
}
