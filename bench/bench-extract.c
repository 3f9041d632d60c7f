/* SPDX-License-Identifier: MIT */
/*
 * bench-extract.c: MB/s of rendered HTML turned into fields, on one core.
 *
 * Usage: bench-extract CORPUS_DIR [SECONDS]
 * CORPUS_DIR holds action=parse answers (<pageid>.json, as written by
 * bench/make-corpus.sh).  Every page's parse.text is loaded into memory, then
 * extracted in a loop for at least SECONDS (default 3) of CPU time; the
 * figure is HTML bytes per CPU second of this thread.  For scale it also
 * prints the speed of libxml2's HTML push parser alone on the same pages,
 * with SAX callbacks that do nothing: the bound on any libxml2 extractor.
 */
#include "extract.h"

#include <dirent.h>
#include <libxml/HTMLparser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void noop_chars(void *ctx, const xmlChar *s, int n)
{
	(void)ctx;
	(void)s;
	(void)n;
}

/* libxml2 alone: MB/s of HTML through its push parser, no-op callbacks. */
static double libxml2_alone(char **html, size_t *len, size_t n, double secs);

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench-extract CORPUS_DIR [SECONDS]\n"
				"(build a corpus with bench/make-corpus.sh)\n");
		return 2;
	}
	double secs = argc > 2 ? atof(argv[2]) : 3.0;
	DIR *d = opendir(argv[1]);
	if (!d) {
		perror(argv[1]);
		return 1;
	}
	size_t n = 0, cap = 0, bytes = 0;
	char **html = NULL;
	size_t *len = NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0 ||
		    !strcmp(e->d_name, "info.json"))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		json_error_t je;
		json_t *j = json_load_file(path, 0, &je);
		const char *text = json_string_value(
			json_object_get(json_object_get(j, "parse"), "text"));
		if (text) {
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				html = realloc(html, cap * sizeof(*html));
				len = realloc(len, cap * sizeof(*len));
			}
			len[n] = strlen(text);
			html[n] = strdup(text);
			bytes += len[n];
			n++;
		}
		json_decref(j);
	}
	closedir(d);
	if (!n) {
		fprintf(stderr, "bench-extract: no parse answers in %s\n", argv[1]);
		return 1;
	}
	struct extract *x = extract_new(NULL);
	size_t done_bytes = 0, done_pages = 0, out_bytes = 0;
	double t0 = cpu_now(), t;
	do {
		for (size_t i = 0; i < n; i++) {
			struct extract_doc doc;
			extract_html(x, html[i], len[i], &doc);
			out_bytes += doc.text_len;
			extract_doc_release(&doc);
		}
		done_bytes += bytes;
		done_pages += n;
		t = cpu_now() - t0;
	} while (t < secs);
	printf("bench-extract: %zu pages, %.1f MB of HTML (avg %.1f KB/page), "
	       "text %.0f%% of HTML\n",
	       n, bytes / 1e6, bytes / 1e3 / n, 100.0 * out_bytes / done_bytes);
	printf("bench-extract: %.1f MB/s per core, %.0f pages/s per core "
	       "(%zu pages in %.2f s CPU)\n",
	       done_bytes / 1e6 / t, done_pages / t, done_pages, t);
	double raw = libxml2_alone(html, len, n, secs);
	printf("bench-extract: libxml2's HTML parser alone (no-op SAX): %.1f MB/s "
	       "per core; the extractor runs at %.0f%% of it\n", raw,
	       100.0 * (done_bytes / 1e6 / t) / raw);
	extract_free(x);
	for (size_t i = 0; i < n; i++)
		free(html[i]);
	free(html);
	free(len);
	return 0;
}

static double libxml2_alone(char **html, size_t *len, size_t n, double secs)
{
	htmlSAXHandler sax;
	memset(&sax, 0, sizeof(sax));
	sax.characters = noop_chars;
	size_t bytes = 0;
	double t0 = cpu_now(), t;
	do {
		for (size_t i = 0; i < n; i++) {
			htmlParserCtxtPtr c = htmlCreatePushParserCtxt(
				&sax, NULL, NULL, 0, NULL, XML_CHAR_ENCODING_UTF8);
			htmlCtxtUseOptions(c, HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
					      HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC |
					      HTML_PARSE_NOBLANKS | HTML_PARSE_COMPACT);
			/* One call with terminate set, as extract.c feeds
			 * it: the fastest way through the push parser. */
			htmlParseChunk(c, html[i], (int)len[i], 1);
			htmlFreeParserCtxt(c);
			bytes += len[i];
		}
		t = cpu_now() - t0;
	} while (t < secs);
	return bytes / 1e6 / t;
}
