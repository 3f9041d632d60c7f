/* SPDX-License-Identifier: MIT */
/*
 * conf.c: freshet.conf through libinih.
 *
 * libinih (as Debian builds it) does not pass the line number to the handler
 * and does not call it for a section header, yet every error must name its
 * line and an empty unknown section is still an error.  So the file is fed
 * through our own line reader (ini_parse_stream): the reader counts lines
 * and recognises section headers as they go by, and the handler, called for
 * the line the reader just returned, knows its line number.  The first error
 * wins; later ones are ignored, so the message and the line always agree.
 *
 * Invariant: after conf_load() fails, cfg may hold a mix of defaults and
 * values; it is only good for conf_errmsg() and conf_free().
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "redact.h"
#include "redis.h"
#include "xmalloc.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/freshet"
#endif

enum section_kind { SEC_NONE, SEC_REDIS, SEC_WORKER, SEC_SEARCHD, SEC_WIKI,
		    SEC_REPLICATION, SEC_BAD };

struct parse {
	struct conf *cfg;
	const char *name;        /* file name used in messages */
	FILE *fp;                /* source: a file ... */
	const char *text;        /* ... or a string */
	int line;                /* number of the line last returned */
	enum section_kind kind;  /* section of that line */
	struct conf_wiki *wiki;/* current [wiki NAME], when kind == SEC_WIKI */
	bool file_wikis;         /* a [wiki] section replaced the default wiki */
	bool failed;
	int password_line;
	int token_line;
	int sentinels_line;
	int repl_wikis_line;
};

static void fail(struct parse *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records the first error as "<name>:<line>: message". */
static void fail(struct parse *p, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	int n = snprintf(p->cfg->errmsg, sizeof p->cfg->errmsg, "%s:%d: ",
			 p->name, p->line);
	if (n < 0 || (size_t)n >= sizeof p->cfg->errmsg)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->cfg->errmsg + n, sizeof p->cfg->errmsg - (size_t)n, fmt, ap);
	va_end(ap);
	/* Values are quoted back: never a URL's credentials. */
	char *clean = redact_userinfo(p->cfg->errmsg);
	snprintf(p->cfg->errmsg, sizeof p->cfg->errmsg, "%s", clean);
	free(clean);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static void wiki_defaults(struct conf_wiki *w, const char *id)
{
	memset(w, 0, sizeof *w);
	w->id = xstrdup(id);
	w->api = xstrdup(CONF_DEFAULT_API);
	w->language = xstrdup("en");
	w->shards = 4;
	w->namespaces = xmalloc(sizeof *w->namespaces);
	w->namespaces[0] = 0;
	w->n_namespaces = 1;
	w->concurrency = 8;
	w->rate = 50;
	w->user_agent_contact = xstrdup("");
	w->saneitize_days = 14;
	w->saneitize_batch = 50;
	w->remote_timeout_ms = 2000;
}

static void free_remotes(struct conf_wiki *w)
{
	for (size_t i = 0; i < w->n_search_remotes; i++)
		free(w->search_remotes[i]);
	free(w->search_remotes);
	w->search_remotes = NULL;
	w->n_search_remotes = 0;
}

static bool parse_int(const char *v, long min, long max, int *out);

/* Parses "local" or "remote host:port,host:port,..." into w. */
static bool parse_search(struct conf_wiki *w, const char *value)
{
	free_remotes(w);
	w->search_replica = false;
	if (strcmp(value, "local") == 0)
		return true;
	if (strcmp(value, "replica") == 0) {
		w->search_replica = true;
		return true;
	}
	if (strncmp(value, "remote", 6) != 0 || (value[6] != ' ' && value[6] != '\t'))
		return false;
	char *list = xstrdup(value + 7), *save = NULL;
	bool ok = true;
	for (char *t = strtok_r(list, ", \t", &save); t && ok; t = strtok_r(NULL, ", \t", &save)) {
		const char *colon = strrchr(t, ':');
		int port;
		ok = colon && colon != t && parse_int(colon + 1, 1, 65535, &port);
		w->search_remotes = xrealloc(w->search_remotes,
					     (w->n_search_remotes + 1) * sizeof *w->search_remotes);
		w->search_remotes[w->n_search_remotes++] = xstrdup(t);
	}
	free(list);
	if (!ok || !w->n_search_remotes) {
		free_remotes(w);
		return false;
	}
	return true;
}

static void wiki_release(struct conf_wiki *w)
{
	free(w->id);
	free(w->api);
	free(w->language);
	free(w->namespaces);
	free(w->user_agent_contact);
	free_remotes(w);
}

/* Parses a whole decimal integer in [min, max]. */
static bool parse_int(const char *v, long min, long max, int *out)
{
	if (!*v)
		return false;
	errno = 0;
	char *end;
	long n = strtol(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return false;
	*out = (int)n;
	return true;
}

/* Parses redis://host[:port][/db] or unix:///path[?db=N] into cfg. */
static bool parse_redis_url(struct conf *cfg, const char *url,
			    const char **why)
{
	free(cfg->redis_host);
	free(cfg->redis_socket);
	cfg->redis_host = cfg->redis_socket = NULL;
	cfg->redis_port = 6379;
	cfg->redis_db = 0;
	if (strncmp(url, "unix://", 7) == 0) {
		const char *path = url + 7;
		if (*path != '/') {
			*why = "a unix socket URL needs an absolute path (unix:///path/redis.sock)";
			return false;
		}
		const char *q = strchr(path, '?');
		if (q) {
			if (strncmp(q, "?db=", 4) != 0 ||
			    !parse_int(q + 4, 0, INT_MAX, &cfg->redis_db)) {
				*why = "the only query allowed is ?db=N";
				return false;
			}
			if (cfg->redis_db > REDIS_MAX_DB) {
				*why = "bad database number (0 to 65535)";
				return false;
			}
			cfg->redis_socket = xstrndup(path, (size_t)(q - path));
		} else {
			cfg->redis_socket = xstrdup(path);
		}
		return true;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		*why = "expected redis://host[:port][/db] or unix:///path[?db=N]";
		return false;
	}
	const char *host = url + 8;
	if (strchr(host, '@')) {
		*why = "no credentials in the URL: use password_file or FRESHET_REDIS_PASSWORD";
		return false;
	}
	size_t hlen = strcspn(host, ":/");
	if (hlen == 0) {
		*why = "the URL has no host";
		return false;
	}
	cfg->redis_host = xstrndup(host, hlen);
	const char *rest = host + hlen;
	if (*rest == ':') {
		char port[16];
		size_t plen = strcspn(rest + 1, "/");
		if (plen == 0 || plen >= sizeof port) {
			*why = "bad port";
			return false;
		}
		memcpy(port, rest + 1, plen);
		port[plen] = '\0';
		if (!parse_int(port, 1, 65535, &cfg->redis_port)) {
			*why = "bad port";
			return false;
		}
		rest += 1 + plen;
	}
	if (*rest == '/' && rest[1]) {
		if (!parse_int(rest + 1, 0, REDIS_MAX_DB, &cfg->redis_db)) {
			*why = "bad database number (0 to 65535)";
			return false;
		}
	} else if (*rest && strcmp(rest, "/") != 0) {
		*why = "unexpected text after the host";
		return false;
	}
	return true;
}

/* Parses "" (off), "port", ":port" or "host:port". */
static bool parse_listen(struct conf *cfg, const char *v)
{
	free(cfg->metrics_host);
	cfg->metrics_host = NULL;
	cfg->metrics_port = 0;
	if (!*v)
		return true;
	const char *colon = strrchr(v, ':');
	const char *port = colon ? colon + 1 : v;
	int n;
	if (!parse_int(port, 1, 65535, &n))
		return false;
	if (colon && colon > v) {
		const char *h = v;
		size_t len = (size_t)(colon - v);
		if (*h == '[' && len >= 2 && h[len - 1] == ']') {
			h++;
			len -= 2;
		}
		cfg->metrics_host = xstrndup(h, len);
	} else {
		cfg->metrics_host = xstrdup("127.0.0.1");
	}
	cfg->metrics_port = n;
	return true;
}

static bool valid_wiki_id(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

static bool valid_language(const char *s)
{
	/* BCP 47-ish, as MediaWiki spells codes: "en", "zh-hans", "be-tarask". */
	size_t n = strlen(s);
	if (n < 2 || n > 20 || !isalpha((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '-')
			return false;
	return true;
}

static bool valid_api(const char *s)
{
	const char *host;
	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else
		return false;
	if (!*host || *host == '/' || *host == ':')
		return false;
	for (const char *c = s; *c; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
			return false;
	return true;
}

/* The api is a script URL: freshet appends its own query string, and the
 * page URLs replace its last path segment. */
static bool api_has_query(const char *s)
{
	return strpbrk(s, "?#") != NULL;
}

static bool parse_namespaces(struct conf_wiki *w, const char *v)
{
	size_t cap = 4, n = 0;
	int *ns = xmalloc(cap * sizeof *ns);
	const char *s = v;
	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		char *end;
		errno = 0;
		long x = strtol(s, &end, 10);
		if (end == s || errno || x < 0 || x > INT_MAX) {
			free(ns);
			return false;
		}
		if (n == cap)
			ns = xrealloc(ns, (cap *= 2) * sizeof *ns);
		ns[n++] = (int)x;
		s = end;
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (*s != ',') {
			free(ns);
			return false;
		}
		s++;
	}
	free(w->namespaces);
	w->namespaces = ns;
	w->n_namespaces = n;
	return true;
}

/* Called by the reader for each section header line. */
static void begin_section(struct parse *p, const char *name)
{
	struct conf *cfg = p->cfg;
	p->wiki = NULL;
	if (strcmp(name, "redis") == 0) {
		p->kind = SEC_REDIS;
	} else if (strcmp(name, "worker") == 0) {
		p->kind = SEC_WORKER;
	} else if (strcmp(name, "searchd") == 0) {
		p->kind = SEC_SEARCHD;
	} else if (strcmp(name, "replication") == 0) {
		p->kind = SEC_REPLICATION;
	} else if (strncmp(name, "wiki", 4) == 0 &&
		   (name[4] == '\0' || isspace((unsigned char)name[4]))) {
		const char *id = name + 4;
		while (isspace((unsigned char)*id))
			id++;
		p->kind = SEC_BAD;
		if (!*id) {
			fail(p, "[wiki] needs the wiki id: [wiki NAME]");
			return;
		}
		if (!valid_wiki_id(id)) {
			fail(p, "bad wiki id '%s' (letters, digits, '_' and '-' only)", id);
			return;
		}
		if (!p->file_wikis) {
			for (size_t i = 0; i < cfg->n_wikis; i++)
				wiki_release(&cfg->wikis[i]);
			cfg->n_wikis = 0;
			p->file_wikis = true;
		}
		for (size_t i = 0; i < cfg->n_wikis; i++)
			if (strcmp(cfg->wikis[i].id, id) == 0) {
				fail(p, "duplicate section [wiki %s] (first on line %d)",
				     id, cfg->wikis[i].line);
				return;
			}
		cfg->wikis = xrealloc(cfg->wikis,
				      (cfg->n_wikis + 1) * sizeof *cfg->wikis);
		p->wiki = &cfg->wikis[cfg->n_wikis++];
		wiki_defaults(p->wiki, id);
		p->wiki->line = p->line;
		p->kind = SEC_WIKI;
	} else {
		p->kind = SEC_BAD;
		fail(p, "unknown section [%s]", name);
	}
}

/* Looks at a line the reader is about to hand to libinih. */
static void see_line(struct parse *p, const char *line)
{
	while (isspace((unsigned char)*line))
		line++;
	if (*line != '[')
		return;
	const char *end = strchr(line, ']');
	if (!end) {
		fail(p, "section header without ']'");
		p->kind = SEC_BAD;
		return;
	}
	char name[256];
	const char *s = line + 1;
	while (s < end && isspace((unsigned char)*s))
		s++;
	size_t n = (size_t)(end - s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= sizeof name)
		n = sizeof name - 1;
	memcpy(name, s, n);
	name[n] = '\0';
	begin_section(p, name);
}

/* The ini_reader: fgets() over a FILE or a string, counting lines. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t cap = (size_t)num - 1, n = 0;
	bool eol = false;
	if (p->fp) {
		if (!fgets(str, num, p->fp))
			return NULL;
		n = strlen(str);
		eol = n > 0 && str[n - 1] == '\n';
		if (!eol && !feof(p->fp)) {
			int c;
			while ((c = fgetc(p->fp)) != EOF && c != '\n')
				;
			p->line++;
			fail(p, "line longer than %zu bytes", cap);
			p->kind = SEC_BAD;
			str[0] = '\0';
			return str;
		}
	} else {
		if (!*p->text)
			return NULL;
		size_t len = strcspn(p->text, "\n");
		eol = p->text[len] == '\n';
		if (len > cap || (len == cap && eol)) {
			p->text += len + eol;
			p->line++;
			fail(p, "line longer than %zu bytes", cap);
			p->kind = SEC_BAD;
			str[0] = '\0';
			return str;
		}
		memcpy(str, p->text, len);
		n = len;
		if (eol)
			str[n++] = '\n';
		str[n] = '\0';
		p->text += len + eol;
	}
	p->line++;
	see_line(p, str);
	return str;
}

static int handle_redis(struct parse *p, const char *key, const char *value)
{
	struct conf *cfg = p->cfg;
	if (strcmp(key, "url") == 0) {
		const char *why = NULL;
		struct redis_url ru;
		char rerr[512];
		if (!parse_redis_url(cfg, value, &why)) {
			fail(p, "bad url '%s' in [redis]: %s", value, why);
			return 0;
		}
		/* What the connection will accept, checked now, with the line. */
		if (redis_url_parse(value, &ru, rerr, sizeof rerr) != STATUS_OK) {
			fail(p, "bad url in [redis]: %s", rerr);
			return 0;
		}
		set_str(&cfg->redis_url, value);
	} else if (strcmp(key, "password_file") == 0) {
		set_str(&cfg->redis_password_file, value);
		p->password_line = p->line;
	} else if (strcmp(key, "sentinels") == 0) {
		char (*hosts)[256] = xcalloc(REDIS_MAX_SENTINELS, sizeof *hosts);
		int ports[REDIS_MAX_SENTINELS], n;
		char rerr[512];
		enum status st = !*value ? STATUS_OK
			: redis_sentinels_parse(value, hosts, ports, &n, rerr, sizeof rerr);
		free(hosts);
		if (st != STATUS_OK) {
			fail(p, "bad sentinels in [redis]: %s", rerr);
			return 0;
		}
		set_str(&cfg->redis_sentinels, value);
		p->sentinels_line = p->line;
	} else if (strcmp(key, "master_name") == 0) {
		set_str(&cfg->redis_master_name, value);
	} else if (strcmp(key, "stream_retention_s") == 0) {
		if (!parse_int(value, 0, 315360000, &cfg->stream_retention_s)) {
			fail(p, "bad value '%s' for stream_retention_s in [redis]: expected "
			     "an integer from 0 to 315360000", value);
			return 0;
		}
	} else {
		fail(p, "unknown key '%s' in [redis]", key);
		return 0;
	}
	return 1;
}

/* An integer key of a section: where it goes in struct conf, its range. */
struct int_key {
	const char *key;
	size_t off;
	long min, max;
};

/* Sets the int key of table t[0..n) that key names, in [section].  Returns
 * 1 when set, 0 after fail() on a bad value, -1 when key is not in t. */
static int set_int_key(struct parse *p, const struct int_key *t, size_t n,
		       const char *section, const char *key, const char *value)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(key, t[i].key) != 0)
			continue;
		int *dst = (int *)((char *)p->cfg + t[i].off);
		if (!parse_int(value, t[i].min, t[i].max, dst)) {
			fail(p, "bad value '%s' for %s in [%s]: expected an integer from %ld to %ld",
			     value, key, section, t[i].min, t[i].max);
			return 0;
		}
		return 1;
	}
	return -1;
}

static int handle_worker(struct parse *p, const char *key, const char *value)
{
	struct conf *cfg = p->cfg;
	static const struct int_key ints[] = {
		{ "threads", offsetof(struct conf, threads), 0, 1024 },
		{ "batch", offsetof(struct conf, batch), 1, 100000 },
		{ "commit_docs", offsetof(struct conf, commit_docs), 1, 10000000 },
		{ "commit_ms", offsetof(struct conf, commit_ms), 1, 3600000 },
		{ "max_deliveries", offsetof(struct conf, max_deliveries), 1, 1000 },
		{ "max_interrupted", offsetof(struct conf, max_interrupted), 1, 100000 },
		{ "max_event_bytes", offsetof(struct conf, max_event_bytes), 1024, 67108864 },
		{ "lease_ms", offsetof(struct conf, lease_ms), 1000, 3600000 },
		{ "shutdown_timeout_ms", offsetof(struct conf, shutdown_timeout_ms), 0, 3600000 },
	};
	int r = set_int_key(p, ints, sizeof ints / sizeof ints[0], "worker", key, value);
	if (r >= 0)
		return r;
	if (strcmp(key, "data_dir") == 0) {
		if (!*value) {
			fail(p, "data_dir in [worker] cannot be empty");
			return 0;
		}
		set_str(&cfg->data_dir, value);
	} else if (strcmp(key, "analyzer_dir") == 0) {
		set_str(&cfg->analyzer_dir, value);
	} else if (strcmp(key, "metrics_listen") == 0) {
		if (!parse_listen(cfg, value)) {
			fail(p, "bad value '%s' for metrics_listen in [worker]: expected host:port or port",
			     value);
			return 0;
		}
		set_str(&cfg->metrics_listen, value);
	} else {
		fail(p, "unknown key '%s' in [worker]", key);
		return 0;
	}
	return 1;
}

/* Parses "host:port" or "port" (host then "127.0.0.1"); "[::1]:80" too. */
static bool parse_hostport(const char *v, char **host, int *port)
{
	const char *colon = strrchr(v, ':');
	int n;
	if (!parse_int(colon ? colon + 1 : v, 1, 65535, &n))
		return false;
	char *h;
	if (colon && colon > v) {
		size_t len = (size_t)(colon - v);
		if (*v == '[' && len >= 2 && v[len - 1] == ']')
			h = xstrndup(v + 1, len - 2);
		else
			h = xstrndup(v, len);
	} else {
		h = xstrdup("127.0.0.1");
	}
	free(*host);
	*host = h;
	*port = n;
	return true;
}

static int handle_searchd(struct parse *p, const char *key, const char *value)
{
	struct conf *cfg = p->cfg;
	static const struct int_key ints[] = {
		{ "threads", offsetof(struct conf, searchd_threads), 0, 1024 },
		{ "max_query_bytes", offsetof(struct conf, searchd_max_query_bytes), 1, 65536 },
		{ "max_terms", offsetof(struct conf, searchd_max_terms), 1, 1024 },
		{ "timeout_ms", offsetof(struct conf, searchd_timeout_ms), 1, 600000 },
		{ "max_connections", offsetof(struct conf, searchd_max_connections), 1, 100000 },
		{ "connection_timeout_s", offsetof(struct conf, searchd_connection_timeout_s), 1, 3600 },
		{ "shutdown_timeout_ms", offsetof(struct conf, searchd_shutdown_timeout_ms), 0, 3600000 },
	};
	int r = set_int_key(p, ints, sizeof ints / sizeof ints[0], "searchd", key, value);
	if (r >= 0)
		return r;
	if (strcmp(key, "listen") == 0) {
		if (!parse_hostport(value, &cfg->searchd_host, &cfg->searchd_port)) {
			fail(p, "bad value '%s' for listen in [searchd]: expected host:port or port",
			     value);
			return 0;
		}
		set_str(&cfg->searchd_listen, value);
	} else if (strcmp(key, "token_file") == 0) {
		set_str(&cfg->searchd_token_file, value);
		p->token_line = p->line;
	} else if (strcmp(key, "allow_anonymous") == 0) {
		if (strcmp(value, "true") == 0) {
			cfg->searchd_allow_anonymous = true;
		} else if (strcmp(value, "false") == 0) {
			cfg->searchd_allow_anonymous = false;
		} else {
			fail(p, "bad value '%s' for allow_anonymous in [searchd]: expected true or false",
			     value);
			return 0;
		}
	} else {
		fail(p, "unknown key '%s' in [searchd]", key);
		return 0;
	}
	return 1;
}

/* Reads the searchd token from token_file: its first line, not empty. */
static enum status load_token(struct parse *p)
{
	struct conf *cfg = p->cfg;
	free(cfg->searchd_token);
	cfg->searchd_token = NULL;
	if (!*cfg->searchd_token_file)
		return STATUS_OK;
	p->line = p->token_line;
	FILE *f = fopen(cfg->searchd_token_file, "r");
	if (!f) {
		fail(p, "cannot read token_file '%s': %s",
		     cfg->searchd_token_file, strerror(errno));
		return STATUS_IO;
	}
	char line[1024];
	if (!fgets(line, sizeof line, f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!*line) {
		fail(p, "token_file '%s' is empty", cfg->searchd_token_file);
		return STATUS_CONFIG;
	}
	cfg->searchd_token = xstrdup(line);
	return STATUS_OK;
}

/* The consistency loop's keys of [wiki NAME]: returns 1 when key is one
 * and its value is good, 0 (failed) when its value is bad, -1 when key is
 * not one of them. */
static int handle_wiki_saneitize(struct parse *p, const char *key, const char *value)
{
	struct conf_wiki *w = p->wiki;
	int n;
	if (strcmp(key, "saneitize_days") == 0) {
		char *end;
		errno = 0;
		double d = strtod(value, &end);
		if (!*value || *end || errno || !(d >= 0 && d <= 3650)) {
			fail(p, "bad value '%s' for saneitize_days in [wiki %s]: expected days "
			     "from 0 (off) to 3650", value, w->id);
			return 0;
		}
		w->saneitize_days = d;
	} else if (strcmp(key, "saneitize_interval_s") == 0) {
		if (!parse_int(value, 0, 315360000, &n)) {
			fail(p, "bad value '%s' for saneitize_interval_s in [wiki %s]: expected "
			     "seconds (0 = use saneitize_days)", value, w->id);
			return 0;
		}
		w->saneitize_interval_s = n;
	} else if (strcmp(key, "saneitize_batch") == 0) {
		if (!parse_int(value, 1, 50, &n)) {
			fail(p, "bad value '%s' for saneitize_batch in [wiki %s]: expected an "
			     "integer from 1 to 50", value, w->id);
			return 0;
		}
		w->saneitize_batch = n;
	} else {
		return -1;
	}
	return 1;
}

static int handle_wiki(struct parse *p, const char *key, const char *value)
{
	struct conf_wiki *w = p->wiki;
	int n;
	if (strcmp(key, "api") == 0) {
		if (!valid_api(value)) {
			fail(p, "bad api '%s' in [wiki %s]: expected an http:// or https:// URL",
			     value, w->id);
			return 0;
		}
		if (api_has_query(value)) {
			fail(p, "bad api '%s' in [wiki %s]: no query string or fragment: "
			     "give the api.php URL itself", value, w->id);
			return 0;
		}
		set_str(&w->api, value);
	} else if (strcmp(key, "language") == 0) {
		if (!valid_language(value)) {
			fail(p, "bad language '%s' in [wiki %s]: expected a MediaWiki language code such as en or zh-hans",
			     value, w->id);
			return 0;
		}
		set_str(&w->language, value);
	} else if (strcmp(key, "shards") == 0) {
		if (!parse_int(value, 1, 4096, &n)) {
			fail(p, "bad value '%s' for shards in [wiki %s]: expected an integer from 1 to 4096",
			     value, w->id);
			return 0;
		}
		w->shards = n;
	} else if (strcmp(key, "namespaces") == 0) {
		if (!parse_namespaces(w, value)) {
			fail(p, "bad value '%s' for namespaces in [wiki %s]: expected comma-separated namespace ids >= 0",
			     value, w->id);
			return 0;
		}
	} else if (strcmp(key, "concurrency") == 0) {
		if (!parse_int(value, 1, 1024, &n)) {
			fail(p, "bad value '%s' for concurrency in [wiki %s]: expected an integer from 1 to 1024",
			     value, w->id);
			return 0;
		}
		w->concurrency = n;
	} else if (strcmp(key, "rate") == 0) {
		char *end;
		errno = 0;
		double r = strtod(value, &end);
		if (!*value || *end || errno || !(r >= 0 && r <= 1e6)) {
			fail(p, "bad value '%s' for rate in [wiki %s]: expected fetches per second (0 = unlimited)",
			     value, w->id);
			return 0;
		}
		w->rate = r;
	} else if (strcmp(key, "user_agent_contact") == 0) {
		for (const char *c = value; *c; c++)
			if (iscntrl((unsigned char)*c)) {
				fail(p, "control character in user_agent_contact in [wiki %s]",
				     w->id);
				return 0;
			}
		set_str(&w->user_agent_contact, value);
	} else if ((n = handle_wiki_saneitize(p, key, value)) >= 0) {
		return n;
	} else if (strcmp(key, "search") == 0) {
		if (!parse_search(w, value)) {
			fail(p, "bad value '%s' for search in [wiki %s]: expected local, replica or remote host:port,... (one per shard)",
			     value, w->id);
			return 0;
		}
		w->search_line = p->line;
	} else if (strcmp(key, "remote_timeout_ms") == 0) {
		if (!parse_int(value, 1, 600000, &n)) {
			fail(p, "bad value '%s' for remote_timeout_ms in [wiki %s]: expected an integer from 1 to 600000",
			     value, w->id);
			return 0;
		}
		w->remote_timeout_ms = n;
	} else {
		fail(p, "unknown key '%s' in [wiki %s]", key, w->id);
		return 0;
	}
	return 1;
}

/* ---------------------------------------------------------- [replication] */

static void free_repl_wikis(struct conf *cfg)
{
	for (size_t i = 0; i < cfg->n_repl_wikis; i++)
		free(cfg->repl_wikis[i]);
	free(cfg->repl_wikis);
	cfg->repl_wikis = NULL;
	cfg->n_repl_wikis = 0;
}

static int handle_replication(struct parse *p, const char *key, const char *value)
{
	struct conf *cfg = p->cfg;
	static const struct int_key ints[] = {
		{ "changesets", offsetof(struct conf, repl_changesets), 0, 100000 },
		{ "interval_s", offsetof(struct conf, repl_interval_s), 1, 86400 },
	};
	int r = set_int_key(p, ints, sizeof ints / sizeof ints[0], "replication", key, value);
	if (r >= 0)
		return r;
	if (strcmp(key, "advertise") == 0) {
		char *host = NULL;
		int port;
		/* A bare port would advertise 127.0.0.1, which no other host
		 * can reach: the host is required. */
		bool ok = !*value || (strchr(value, ':') && strchr(value, ':') != value &&
				      !strchr(value, ' ') && parse_hostport(value, &host, &port));
		free(host);
		if (!ok) {
			fail(p, "bad value '%s' for advertise in [replication]: expected host:port",
			     value);
			return 0;
		}
		set_str(&cfg->repl_advertise, value);
	} else if (strcmp(key, "wikis") == 0) {
		free_repl_wikis(cfg);
		char *list = xstrdup(value), *save = NULL;
		for (char *t = strtok_r(list, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
			cfg->repl_wikis = xrealloc(cfg->repl_wikis,
						   (cfg->n_repl_wikis + 1) * sizeof *cfg->repl_wikis);
			cfg->repl_wikis[cfg->n_repl_wikis++] = xstrdup(t);
		}
		free(list);
		p->repl_wikis_line = p->line;
	} else {
		fail(p, "unknown key '%s' in [replication]", key);
		return 0;
	}
	return 1;
}

bool conf_replicates(const struct conf *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_repl_wikis; i++)
		if (strcmp(cfg->repl_wikis[i], id) == 0)
			return true;
	return false;
}

static int handler(void *user, const char *section, const char *key,
		   const char *value)
{
	struct parse *p = user;
	(void)section; /* the reader already classified it */
	if (p->failed)
		return 0;
	switch (p->kind) {
	case SEC_NONE:
		fail(p, "key '%s' outside any section", key);
		return 0;
	case SEC_REDIS:
		return handle_redis(p, key, value);
	case SEC_WORKER:
		return handle_worker(p, key, value);
	case SEC_SEARCHD:
		return handle_searchd(p, key, value);
	case SEC_WIKI:
		return handle_wiki(p, key, value);
	case SEC_REPLICATION:
		return handle_replication(p, key, value);
	case SEC_BAD:
		return 0;
	}
	return 0;
}

/* Loads the password as every Redis connection will (redis.h decides:
 * FRESHET_REDIS_PASSWORD, else password_file), so that a bad file is
 * reported with its line when the configuration is loaded. */
static enum status load_password(struct parse *p)
{
	struct conf *cfg = p->cfg;
	if (cfg->redis_password)
		explicit_bzero(cfg->redis_password, strlen(cfg->redis_password));
	free(cfg->redis_password);
	cfg->redis_password = NULL;
	char err[600];
	enum status st = redis_password_load(cfg->redis_password_file,
					     &cfg->redis_password, err, sizeof err);
	if (st != STATUS_OK) {
		p->line = p->password_line;
		fail(p, "%s", err);
	}
	return st;
}

static enum status run(struct parse *p)
{
	struct conf *cfg = p->cfg;
	cfg->errmsg[0] = '\0';
	int rc = ini_parse_stream(reader, p, handler, p);
	if (rc != 0 && !p->failed) {
		/* libinih's own syntax error: rc is its line. */
		p->line = rc;
		fail(p, "syntax error: expected '[section]' or 'key = value'");
	}
	if (p->failed)
		return STATUS_CONFIG;
	for (size_t i = 0; i < cfg->n_wikis; i++) {
		struct conf_wiki *w = &cfg->wikis[i];
		if (w->n_search_remotes && w->n_search_remotes != (size_t)w->shards) {
			p->line = w->search_line;
			fail(p, "search in [wiki %s] names %zu remotes for %d shards: give one per shard, in shard order",
			     w->id, w->n_search_remotes, w->shards);
			return STATUS_CONFIG;
		}
	}
	for (size_t i = 0; i < cfg->n_repl_wikis; i++)
		if (!conf_wiki(cfg, cfg->repl_wikis[i])) {
			p->line = p->repl_wikis_line;
			fail(p, "wikis in [replication] names '%s', which has no [wiki] section",
			     cfg->repl_wikis[i]);
			return STATUS_CONFIG;
		}
	if (*cfg->redis_sentinels && !*cfg->redis_master_name) {
		p->line = p->sentinels_line;
		fail(p, "sentinels in [redis] need a master_name");
		return STATUS_CONFIG;
	}
	enum status st = load_token(p);
	if (st != STATUS_OK)
		return st;
	return load_password(p);
}

enum status conf_load(struct conf *cfg, const char *path)
{
	struct parse p = { .cfg = cfg, .name = path, .kind = SEC_NONE };
	if (!path) {
		p.name = "(defaults)";
		return load_password(&p);
	}
	p.fp = fopen(path, "r");
	if (!p.fp) {
		snprintf(cfg->errmsg, sizeof cfg->errmsg, "%s: cannot open: %s",
			 path, strerror(errno));
		return STATUS_IO;
	}
	set_str(&cfg->path, path);
	enum status st = run(&p);
	fclose(p.fp);
	return st;
}

enum status conf_load_string(struct conf *cfg, const char *name,
			       const char *text)
{
	struct parse p = { .cfg = cfg, .name = name, .text = text,
			   .kind = SEC_NONE };
	set_str(&cfg->path, name);
	return run(&p);
}

const char *conf_path(const char *arg)
{
	if (arg)
		return arg;
	const char *env = getenv("FRESHET_CONFIG");
	return env && *env ? env : NULL;
}

struct conf *conf_new(void)
{
	struct conf *cfg = xcalloc(1, sizeof *cfg);
	cfg->redis_url = xstrdup(CONF_DEFAULT_REDIS_URL);
	const char *why;
	parse_redis_url(cfg, cfg->redis_url, &why);
	cfg->redis_password_file = xstrdup("");
	cfg->redis_sentinels = xstrdup("");
	cfg->redis_master_name = xstrdup("");
	cfg->stream_retention_s = 604800;
	cfg->data_dir = xstrdup(CONF_DEFAULT_DATA_DIR);
	cfg->analyzer_dir = xstrdup("");
	cfg->threads = 0;
	cfg->batch = 100;
	cfg->commit_docs = 1000;
	cfg->commit_ms = 1000;
	cfg->max_deliveries = 5;
	cfg->max_interrupted = 20;
	cfg->max_event_bytes = 65536;
	cfg->lease_ms = 30000;
	cfg->shutdown_timeout_ms = 30000;
	cfg->metrics_listen = xstrdup("");
	cfg->searchd_listen = xstrdup("127.0.0.1:7190");
	cfg->searchd_host = xstrdup("127.0.0.1");
	cfg->searchd_port = 7190;
	cfg->searchd_threads = 0;
	cfg->searchd_max_query_bytes = 1024;
	cfg->searchd_max_terms = 32;
	cfg->searchd_timeout_ms = 2000;
	cfg->searchd_token_file = xstrdup("");
	cfg->searchd_max_connections = 256;
	cfg->searchd_connection_timeout_s = 10;
	cfg->searchd_shutdown_timeout_ms = 10000;
	cfg->repl_advertise = xstrdup("");
	cfg->repl_interval_s = 1;
	cfg->wikis = xmalloc(sizeof *cfg->wikis);
	wiki_defaults(&cfg->wikis[0], CONF_DEFAULT_WIKI);
	cfg->n_wikis = 1;
	return cfg;
}

const char *conf_errmsg(const struct conf *cfg)
{
	return cfg->errmsg;
}

const struct conf_wiki *conf_wiki(const struct conf *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->n_wikis; i++)
		if (strcmp(cfg->wikis[i].id, id) == 0)
			return &cfg->wikis[i];
	return NULL;
}

bool conf_wiki_indexes(const struct conf_wiki *w, int ns)
{
	for (size_t i = 0; i < w->n_namespaces; i++)
		if (w->namespaces[i] == ns)
			return true;
	return false;
}

const char *conf_analyzer_dir(const struct conf *cfg)
{
	const char *env = getenv("FRESHET_ANALYZER_DIR");
	if (env && *env)
		return env;
	if (*cfg->analyzer_dir)
		return cfg->analyzer_dir;
	return PKGLIBDIR;
}

void conf_free(struct conf *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->redis_url);
	free(cfg->redis_host);
	free(cfg->redis_socket);
	free(cfg->redis_password_file);
	free(cfg->redis_password);
	free(cfg->redis_sentinels);
	free(cfg->redis_master_name);
	free(cfg->data_dir);
	free(cfg->analyzer_dir);
	free(cfg->metrics_listen);
	free(cfg->metrics_host);
	free(cfg->searchd_listen);
	free(cfg->searchd_host);
	free(cfg->searchd_token_file);
	free(cfg->searchd_token);
	free(cfg->repl_advertise);
	free_repl_wikis(cfg);
	for (size_t i = 0; i < cfg->n_wikis; i++)
		wiki_release(&cfg->wikis[i]);
	free(cfg->wikis);
	free(cfg);
}
