/*
 * search.c: freshet-search, the command-line search of a wiki's shards.
 *
 * The query goes through the wiki's analyzer in both views, so that it
 * meets the documents' terms exactly as the worker wrote them:
 *
 *   - each loose word becomes one group: the OR of its plain forms (body,
 *     title S, headings XH, auxiliary XA) and its stemmed forms (Z, ZS, ZXH,
 *     ZXA), title forms weighted TITLE_WEIGHT times; groups are ANDed, so
 *     every word must match somewhere (a stopword the stemmed view drops
 *     still matches through its plain form);
 *   - a "quoted phrase" matches its plain terms in order, adjacent, in the
 *     body or (weighted) in the title;
 *   - -word and -"phrase" exclude documents that match them;
 *   - --namespace filters on the boolean XNS<n> terms (no weight).
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
#include "shard.h"
#include "tool.h"
#include "xapian-shim.h"
#include "xmalloc.h"

#define PROG "freshet-search"
#define TITLE_WEIGHT 3.0
#define SNIPPET_BYTES 200
#define MAX_NAMESPACES 64

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--config FILE] --wiki WIKI [--namespace N]...\n"
		"                      [--limit K] [--offset K] [--json] [--language CODE] QUERY\n"
		"\n"
		"Searches every shard of the wiki's live index as one database.\n"
		"QUERY: words (all must match; title matches weigh more),\n"
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

/* The Snowball name Xapian's snippet generator wants for a language code,
 * or "" for a language without a stemmer (exact words only). */
static const char *snowball_name(const char *code)
{
	static const char *const map[][2] = {
		{ "ar", "arabic" }, { "hy", "armenian" }, { "eu", "basque" },
		{ "ca", "catalan" }, { "da", "danish" }, { "nl", "dutch" },
		{ "en", "english" }, { "fi", "finnish" }, { "fr", "french" },
		{ "de", "german" }, { "hu", "hungarian" }, { "id", "indonesian" },
		{ "ga", "irish" }, { "it", "italian" }, { "lt", "lithuanian" },
		{ "ne", "nepali" }, { "nb", "norwegian" }, { "no", "norwegian" },
		{ "nn", "norwegian" }, { "pt", "portuguese" }, { "ro", "romanian" },
		{ "ru", "russian" }, { "es", "spanish" }, { "sv", "swedish" },
		{ "ta", "tamil" }, { "tr", "turkish" },
	};
	size_t n = strcspn(code, "-_");
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strlen(map[i][0]) == n && strncmp(map[i][0], code, n) == 0)
			return map[i][1];
	return "";
}

/* ----------------------------------------------------------- the query */

/* Returns prefix+term as a query term with weight factor (1 = unscaled). */
static struct xquery *pterm(const char *prefix, const char *term, double factor)
{
	char *t = xasprintf("%s%s", prefix, term);
	struct xquery *q = xquery_term(t, strlen(t), 1);
	free(t);
	if (!q) {
		fprintf(stderr, PROG ": out of memory\n");
		abort();
	}
	if (factor != 1.0) {
		struct xquery *s = xquery_scale(q, factor);
		xquery_free(q);
		q = s;
	}
	return q;
}

/* *acc = *acc OP q; frees q.  A NULL *acc takes q. */
static void combine(struct xquery **acc, enum xquery_op op, struct xquery *q)
{
	if (!q)
		return;
	if (!*acc) {
		*acc = q;
		return;
	}
	struct xquery *c = xquery_combine(op, *acc, q);
	xquery_free(*acc);
	xquery_free(q);
	if (!c) {
		fprintf(stderr, PROG ": out of memory\n");
		abort();
	}
	*acc = c;
}

/* Builds the AND of word groups for loose text (see the top of the file).
 * Returns NULL when the text has no term at all. */
static struct xquery *words_query(struct analyzer *an, const char *text,
				  size_t len, enum status *st)
{
	struct analyzer_terms stem = { 0 }, plain = { 0 };
	*st = analyzer_query_terms(an, text, len, &stem, &plain);
	if (*st != STATUS_OK)
		return NULL;
	struct xquery *all = NULL;
	/* Groups by word position: a position has a plain form and, unless
	 * it is a stopword, a stemmed one. */
	for (size_t i = 0; i < plain.count; i++) {
		uint32_t pos = plain.v[i].pos;
		if (i > 0 && plain.v[i - 1].pos == pos)
			continue; /* handled with the first term at this position */
		struct xquery *g = NULL;
		for (size_t j = i; j < plain.count && plain.v[j].pos == pos; j++) {
			const char *t = plain.v[j].term;
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_BODY, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_TITLE, t, TITLE_WEIGHT));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_HEADING, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_AUX, t, 1));
		}
		for (size_t j = 0; j < stem.count; j++) {
			if (stem.v[j].pos != pos)
				continue;
			const char *t = stem.v[j].term;
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_STEM, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_TITLE_STEM, t, TITLE_WEIGHT));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_HEADING_STEM, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_AUX_STEM, t, 1));
		}
		combine(&all, XQUERY_AND, g);
	}
	/* A stemmed term whose position has no plain term (a plugin that
	 * emits only stems) still counts as a word. */
	for (size_t j = 0; j < stem.count; j++) {
		bool seen = false;
		for (size_t i = 0; i < plain.count && !seen; i++)
			seen = plain.v[i].pos == stem.v[j].pos;
		if (seen)
			continue;
		struct xquery *g = NULL;
		combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_STEM, stem.v[j].term, 1));
		combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_TITLE_STEM, stem.v[j].term,
					     TITLE_WEIGHT));
		combine(&all, XQUERY_AND, g);
	}
	analyzer_terms_release(&stem);
	analyzer_terms_release(&plain);
	return all;
}

/* A phrase: the plain terms in order, adjacent, in the body or the title. */
static struct xquery *phrase_query(struct analyzer *an, const char *text,
				   size_t len, enum status *st)
{
	struct analyzer_terms stem = { 0 }, plain = { 0 };
	*st = analyzer_query_terms(an, text, len, &stem, &plain);
	if (*st != STATUS_OK)
		return NULL;
	analyzer_terms_release(&stem);
	if (plain.count == 0)
		return NULL;
	struct xquery *q = NULL;
	const char *prefixes[] = { SHARD_PREFIX_BODY, SHARD_PREFIX_TITLE };
	for (size_t k = 0; k < 2; k++) {
		char **terms = xcalloc(plain.count, sizeof(char *));
		for (size_t i = 0; i < plain.count; i++)
			terms[i] = xasprintf("%s%s", prefixes[k], plain.v[i].term);
		struct xquery *p;
		if (plain.count == 1)
			p = xquery_term(terms[0], strlen(terms[0]), 1);
		else
			p = xquery_phrase((const char *const *)terms, plain.count, 0);
		for (size_t i = 0; i < plain.count; i++)
			free(terms[i]);
		free(terms);
		if (k == 1 && p) {
			struct xquery *s = xquery_scale(p, TITLE_WEIGHT);
			xquery_free(p);
			p = s;
		}
		combine(&q, XQUERY_OR, p);
	}
	analyzer_terms_release(&plain);
	return q;
}

/* Parses the query string into a query tree.  Returns STATUS_OK with *out
 * NULL when the query has no positive term (nothing can match). */
static enum status build_query(struct analyzer *an, const char *s,
			       struct xquery **out)
{
	struct xquery *pos = NULL, *neg = NULL;
	struct buf loose = BUF_INIT;
	enum status st = STATUS_OK;
	const char *p = s;
	while (*p && st == STATUS_OK) {
		bool minus = false;
		if (*p == '-' && (p == s || p[-1] == ' ' || p[-1] == '\t') &&
		    p[1] && p[1] != ' ') {
			minus = true;
			p++;
		}
		if (*p == '"') {
			const char *end = strchr(p + 1, '"');
			size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
			struct xquery *q = phrase_query(an, p + 1, len, &st);
			combine(minus ? &neg : &pos, minus ? XQUERY_OR : XQUERY_AND, q);
			p = end ? end + 1 : p + 1 + len;
			continue;
		}
		size_t len = strcspn(p, " \t\"");
		if (minus) {
			struct xquery *q = words_query(an, p, len, &st);
			combine(&neg, XQUERY_OR, q);
		} else {
			buf_add(&loose, p, len);
			buf_addch(&loose, ' ');
		}
		p += len;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (st == STATUS_OK && loose.len) {
		struct xquery *q = words_query(an, loose.data, loose.len, &st);
		combine(&pos, XQUERY_AND, q);
	}
	buf_release(&loose);
	if (st != STATUS_OK || !pos) {
		xquery_free(pos);
		xquery_free(neg);
		*out = NULL;
		return st;
	}
	if (neg) {
		struct xquery *q = xquery_combine(XQUERY_AND_NOT, pos, neg);
		xquery_free(pos);
		xquery_free(neg);
		pos = q;
	}
	*out = pos;
	return STATUS_OK;
}

/* Restricts q to the namespaces (boolean filter, no weight). */
static struct xquery *filter_namespaces(struct xquery *q, const int *ns, size_t n)
{
	if (!q || n == 0)
		return q;
	struct xquery *f = NULL;
	for (size_t i = 0; i < n; i++) {
		char num[16];
		snprintf(num, sizeof num, "%d", ns[i]);
		combine(&f, XQUERY_OR, pterm(SHARD_PREFIX_NAMESPACE, num, 1));
	}
	struct xquery *r = xquery_combine(XQUERY_FILTER, q, f);
	xquery_free(q);
	xquery_free(f);
	return r;
}

/* ------------------------------------------------------------- output */

/* Undoes the HTML escaping Xapian's snippet generator applies (&amp; &lt;
 * &gt; &quot; &#39;), in place: the output here is plain text and JSON,
 * never HTML. */
static void html_unescape(char *s)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&#39;", '\'' }, { "&#x27;", '\'' },
	};
	char *w = s;
	for (const char *r = s; *r;) {
		size_t k = 0, n = sizeof ents / sizeof ents[0];
		if (*r == '&')
			for (; k < n; k++)
				if (strncmp(r, ents[k].ent, strlen(ents[k].ent)) == 0)
					break;
		if (*r == '&' && k < n) {
			*w++ = ents[k].c;
			r += strlen(ents[k].ent);
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

struct hit {
	json_t *data;   /* the document data (owned) */
	double score;
	unsigned rank;
	char *snippet;
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
	enum status st = build_query(an, qs.data, &q);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": analyzing the query: %s\n", analyzer_errmsg(an));
		goto out;
	}
	q = filter_namespaces(q, namespaces, n_ns);

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
		char *snip = NULL;
		if (xmset_snippet(ms, text, strlen(text), SNIPPET_BYTES,
				  snowball_name(*lang ? lang : language), hs, he,
				  &snip) != STATUS_OK)
			snip = NULL;
		hits[i].snippet = snip ? snip : xstrdup("");
		html_unescape(hits[i].snippet);
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
			printf("\n%u. %s  (score %.3f)\n   %s\n   %s\n", hits[i].rank + 1,
			       jstr(d, "title"), hits[i].score, jstr(d, "url"),
			       hits[i].snippet);
		}
	}
	rc = TOOL_EXIT_OK;
out:
	for (size_t i = 0; i < n_hits; i++) {
		json_decref(hits[i].data);
		free(hits[i].snippet);
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
