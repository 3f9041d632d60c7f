/* SPDX-License-Identifier: MIT */
/*
 * queryset.c: the query set of the search benchmarks and the request that
 * asks one of freshet-searchd (queryset.h).  Moved out of bench-searchd so
 * that every search bench asks the same queries the same way.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"
#include "harness.h"
#include "queryset.h"

struct query queryset_queries[QUERYSET_N];
char *queryset_prefixes[QUERYSET_N];
char (*queryset_page_lang)[16];
char **queryset_page_title;

const char *queryset_pg_config(const char *lang)
{
	if (strcmp(lang, "en") == 0)
		return "english";
	if (strcmp(lang, "de") == 0)
		return "german";
	if (strcmp(lang, "fr") == 0)
		return "french";
	if (strcmp(lang, "ru") == 0)
		return "russian";
	return "simple";
}

void queryset_read_pages(const char *corpus)
{
	char path[4200], line[8192];
	snprintf(path, sizeof path, "%s/pages.tsv", corpus);
	FILE *f = fopen(path, "r");
	if (!f)
		harness_die("%s: %s", path, strerror(errno));
	queryset_page_lang = calloc((size_t)harness_npages + 1, sizeof *queryset_page_lang);
	queryset_page_title = calloc((size_t)harness_npages + 1, sizeof *queryset_page_title);
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *id = strtok(line, "\t"), *lang = strtok(NULL, "\t");
		strtok(NULL, "\t");
		char *title = strtok(NULL, "\t");
		long i = id ? atol(id) : 0;
		if (i < 1 || i > harness_npages || !lang || !title)
			continue;
		snprintf(queryset_page_lang[i], sizeof queryset_page_lang[i], "%s", lang);
		queryset_page_title[i] = strdup(title);
	}
	fclose(f);
}

char *queryset_page_text(struct extract *x, const char *corpus, long id)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/parse/%ld.json", corpus, id);
	json_t *j = harness_load_json(path);
	const char *html = json_string_value(json_object_get(json_object_get(j, "parse"), "text"));
	struct extract_doc d;
	struct buf b = BUF_INIT;
	if (html && extract_html(x, html, strlen(html), &d) == STATUS_OK) {
		buf_add(&b, d.text, d.text_len);
		for (size_t i = 0; i < d.heading.n; i++) {
			buf_addch(&b, ' ');
			buf_adds(&b, d.heading.v[i]);
		}
		for (size_t i = 0; i < d.auxiliary_text.n; i++) {
			buf_addch(&b, ' ');
			buf_adds(&b, d.auxiliary_text.v[i]);
		}
		extract_doc_release(&d);
	}
	json_decref(j);
	return buf_detach(&b, NULL);
}

/* Words of text: runs of letters, digits and non-ASCII bytes; in a CJK
 * text (no spaces between words) a long run gives 2 or 3 characters of it. */
struct words {
	char **v;
	size_t n, cap;
};

static void words_of(const char *text, bool cjk, struct words *w)
{
	const unsigned char *p = (const unsigned char *)text;
	while (*p) {
		while (*p && !(*p >= 0x80 || (*p >= '0' && *p <= '9') ||
			       ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
			p++;
		const unsigned char *s = p;
		bool alpha = false, upper = true;
		while (*p && (*p >= 0x80 || (*p >= '0' && *p <= '9') ||
			      ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))) {
			if (*p >= 0x80 || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
				alpha = true;
			if (*p >= 'a' && *p <= 'z')
				upper = false;
			p++;
		}
		size_t len = (size_t)(p - s);
		if (!alpha || len < 3 || len > 24)
			continue;
		/* Upper-case words may be query operators (AND, OR, NOT). */
		if (upper && len <= 3 && *s < 0x80)
			continue;
		if (cjk && *s >= 0xe3) {
			/* Three-byte characters: cut 2 or 3 of them. */
			size_t chars = len / 3, take = 2 + (harness_rnd() % 2);
			if (chars < take)
				continue;
			size_t at = (size_t)(harness_rnd() % (chars - take + 1)) * 3;
			s += at;
			len = take * 3;
		} else if (len > 20) {
			continue;
		}
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 256;
			w->v = realloc(w->v, w->cap * sizeof *w->v);
		}
		w->v[w->n++] = strndup((const char *)s, len);
	}
}

static void words_free(struct words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	memset(w, 0, sizeof *w);
}

void queryset_make(const char *corpus)
{
	struct extract *x = extract_new(NULL);
	for (int i = 0; i < QUERYSET_N; i++) {
		struct words w = { 0 };
		long id;
		do {
			words_free(&w);
			id = (long)(harness_rnd() % (uint64_t)harness_npages) + 1;
			char *t = queryset_page_text(x, corpus, id);
			const char *l = queryset_page_lang[id];
			words_of(t, strncmp(l, "ja", 2) == 0 || strncmp(l, "zh", 2) == 0, &w);
			free(t);
		} while (w.n < 8);
		struct query *q = &queryset_queries[i];
		snprintf(q->lang, sizeof q->lang, "%s", queryset_page_lang[id]);
		q->pgcfg = queryset_pg_config(q->lang);
		q->phrase = i % 10 == 0;
		size_t n = 1 + harness_rnd() % 3;
		struct buf b = BUF_INIT;
		if (q->phrase) {
			n = n < 2 ? 2 : n;
			size_t at = (size_t)(harness_rnd() % (w.n - n));
			buf_addch(&b, '"');
			for (size_t k = 0; k < n; k++)
				buf_addf(&b, "%s%s", k ? " " : "", w.v[at + k]);
			buf_addch(&b, '"');
		} else {
			for (size_t k = 0; k < n; k++)
				buf_addf(&b, "%s%s", k ? " " : "", w.v[harness_rnd() % w.n]);
		}
		q->q = buf_detach(&b, NULL);
		words_free(&w);

		/* A completion prefix: "Man:" and 1 to 6 characters. */
		long pid = (long)(harness_rnd() % (uint64_t)harness_npages) + 1;
		const char *t = queryset_page_title[pid] ? queryset_page_title[pid] : "Man:a";
		const char *name = strncmp(t, "Man:", 4) == 0 ? t + 4 : t;
		size_t chars = 1 + harness_rnd() % 6, len = 0;
		for (size_t c = 0; c < chars && name[len]; c++) {
			len++;
			while (((unsigned char)name[len] & 0xc0) == 0x80)
				len++;
		}
		if (asprintf(&queryset_prefixes[i], "Man:%.*s", (int)len, name) < 0)
			harness_die("asprintf");
	}
	extract_free(x);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	buf_add(ctx, p, size * n);
	return size * n;
}

bool queryset_search(CURL *h, int port, const char *wiki, size_t k, bool complete, struct buf *body,
		     char *err, size_t errlen)
{
	const struct query *q = &queryset_queries[k % QUERYSET_N];
	char *e = curl_easy_escape(h, complete ? queryset_prefixes[k % QUERYSET_N] : q->q, 0);
	char url[2048];
	if (complete)
		snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/%s/complete?q=%s", port, wiki, e);
	else
		snprintf(url, sizeof url,
			 "http://127.0.0.1:%d/v1/%s/search?q=%s&lang=%s"
			 "&limit=20",
			 port, wiki, e, q->lang);
	curl_free(e);
	buf_reset(body);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	CURLcode rc = curl_easy_perform(h);
	long st = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
	if (rc == CURLE_OK && st == 200)
		return true;
	snprintf(err, errlen, "%s: curl %d, HTTP %ld: %.120s", url, rc, st, body->data);
	return false;
}
