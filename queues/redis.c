/* SPDX-License-Identifier: MIT */
/*
 * redis.c: a hiredis connection that survives Redis going away.
 *
 * Invariants: ctx is either NULL (disconnected) or a context without an
 * error; any I/O error frees the context at once, so the next command
 * reconnects (hiredis leaves a context unusable after an error, including a
 * read timeout).  The password is held only in this struct, from the
 * environment or a file as redis_password_load() decides, never from the
 * URL or argv.  generation counts
 * successful connects: users that hold server-side state tied to a
 * connection (a consumer's position in its pending list) compare it to know
 * when to start over.  With sentinels, the primary's address is never
 * cached across connects: each connect asks the sentinels again, so the
 * handle cannot stick to a primary that was demoted while it was away.
 */
#include "now.h"
#include "redis.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backoff.h"
#include "log.h"
#include "redact.h"
#include "xmalloc.h"

struct redis {
	struct redis_url url;
	char *password;         /* NULL: no AUTH */
	int connect_timeout_ms;
	int read_timeout_ms;
	redisContext *ctx;
	uint64_t generation;
	struct backoff backoff;   /* between failed implicit reconnects */
	int64_t next_attempt;     /* ms, monotonic: no implicit connect before */
	char (*sentinel_host)[256];  /* n_sentinels entries; NULL without */
	int *sentinel_port;
	int n_sentinels;
	int sentinel_next;        /* the sentinel to ask first */
	char *master_name;
	char address[300];        /* "host:port" or "unix:path" connected last */
	char errmsg[512];
};

static void seterr(struct redis *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct redis *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
	va_end(ap);
}

static enum status url_fail(char *err, size_t errlen, const char *url, const char *why)
{
	if (err && errlen) {
		/* A URL refused for its password must not show it. */
		char *clean = redact_userinfo(url);
		snprintf(err, errlen, "redis url \"%s\": %s", clean, why);
		free(clean);
	}
	return STATUS_CONFIG;
}

enum status redis_url_parse(const char *url, struct redis_url *out, char *err, size_t errlen)
{
	struct redis_url u;
	memset(&u, 0, sizeof u);
	if (!url)
		return url_fail(err, errlen, "", "missing");
	if (strncmp(url, "unix://", 7) == 0) {
		const char *p = url + 7;
		if (*p != '/')
			return url_fail(err, errlen, url, "unix socket path must be absolute");
		const char *q = strchr(p, '?');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		if (n >= sizeof u.path)
			return url_fail(err, errlen, url, "socket path too long");
		memcpy(u.path, p, n);
		if (q) {
			char *end;
			if (strncmp(q, "?db=", 4) != 0 || !q[4])
				return url_fail(err, errlen, url, "only ?db=N is understood");
			errno = 0;
			long db = strtol(q + 4, &end, 10);
			if (*end || errno || db < 0 || db > REDIS_MAX_DB)
				return url_fail(err, errlen, url, "bad db number");
			u.db = (int)db;
		}
		*out = u;
		return STATUS_OK;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return url_fail(err, errlen, url, "expected redis://host:port/db or unix:///path");
	const char *p = url + 8;
	const char *slash = strchr(p, '/');
	const char *at = strchr(p, '@');
	if (at && (!slash || at < slash))
		return url_fail(err, errlen, url, "a password in the URL is not accepted "
		                "(use password_file or FRESHET_REDIS_PASSWORD)");
	size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
	const char *colon = memchr(p, ':', hostport);
	size_t hostlen = colon ? (size_t)(colon - p) : hostport;
	if (hostlen == 0 || hostlen >= sizeof u.host)
		return url_fail(err, errlen, url, "bad host");
	memcpy(u.host, p, hostlen);
	u.port = 6379;
	if (colon) {
		char buf[16];
		size_t n = hostport - hostlen - 1;
		if (n == 0 || n >= sizeof buf)
			return url_fail(err, errlen, url, "bad port");
		memcpy(buf, colon + 1, n);
		buf[n] = '\0';
		char *end;
		long port = strtol(buf, &end, 10);
		if (*end || port < 1 || port > 65535)
			return url_fail(err, errlen, url, "bad port");
		u.port = (int)port;
	}
	if (slash && slash[1]) {
		char *end;
		errno = 0;
		long db = strtol(slash + 1, &end, 10);
		if (*end || errno || db < 0 || db > REDIS_MAX_DB)
			return url_fail(err, errlen, url, "bad db number");
		u.db = (int)db;
	}
	*out = u;
	return STATUS_OK;
}

enum status redis_sentinels_parse(const char *list, char hosts[][256], int *ports,
				  int *n, char *err, size_t errlen)
{
	int k = 0;
	const char *p = list ? list : "";
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		const char *colon = len ? memrchr(p, ':', len) : NULL;
		char port[8];
		size_t plen = colon ? len - (size_t)(colon - p) - 1 : 0;
		if (k == REDIS_MAX_SENTINELS) {
			if (err && errlen)
				snprintf(err, errlen, "more than %d sentinels", REDIS_MAX_SENTINELS);
			return STATUS_CONFIG;
		}
		char *pend = NULL;
		long v = 0;
		if (colon && plen && plen < sizeof port) {
			memcpy(port, colon + 1, plen);
			port[plen] = '\0';
			v = strtol(port, &pend, 10);
		}
		if (!colon || colon == p || (size_t)(colon - p) >= 256 || !pend || *pend ||
		    v < 1 || v > 65535) {
			if (err && errlen)
				snprintf(err, errlen, "sentinel '%.*s' is not host:port",
					 (int)(len > 200 ? 200 : len), p);
			return STATUS_CONFIG;
		}
		memcpy(hosts[k], p, (size_t)(colon - p));
		hosts[k][colon - p] = '\0';
		ports[k++] = (int)v;
		p = end ? end + 1 : p + len;
	}
	if (k == 0) {
		if (err && errlen)
			snprintf(err, errlen, "no sentinel given");
		return STATUS_CONFIG;
	}
	*n = k;
	return STATUS_OK;
}

/* Warns about a password file open to group or others, once per path and
 * process: every connection of a worker loads the file. */
static void warn_loose_mode(const char *path, mode_t mode)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static char *warned;
	pthread_mutex_lock(&mu);
	if (!warned || strcmp(warned, path) != 0) {
		free(warned);
		warned = xstrdup(path);
		log_warn("action=redis_password_file file=%s mode=%04o "
			 "reason=\"readable or writable by group or others: chmod 600 it\"",
			 log_quote(path), (unsigned)(mode & 07777));
	}
	pthread_mutex_unlock(&mu);
}

enum status redis_password_load(const char *password_file, char **out,
				char *err, size_t errlen)
{
	const char *env = getenv("FRESHET_REDIS_PASSWORD");
	if (env && *env) {
		*out = xstrdup(env);
		return STATUS_OK;
	}
	if (!password_file || !*password_file) {
		*out = NULL;
		return STATUS_OK;
	}
	FILE *f = fopen(password_file, "r");
	if (!f) {
		if (err && errlen)
			snprintf(err, errlen, "cannot read password_file '%s': %s",
				 password_file, strerror(errno));
		return STATUS_IO;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		warn_loose_mode(password_file, st.st_mode);
	char line[1024];
	if (!fgets(line, sizeof line, f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!line[0]) {
		if (err && errlen)
			snprintf(err, errlen, "password_file '%s' is empty", password_file);
		return STATUS_CONFIG;
	}
	*out = xstrdup(line);
	explicit_bzero(line, sizeof line);
	return STATUS_OK;
}

struct redis *redis_new(const struct redis_opts *opts, char *err, size_t errlen)
{
	struct redis_url u;
	if (redis_url_parse(opts->url, &u, err, errlen) != STATUS_OK)
		return NULL;
	char *password = NULL;
	if (redis_password_load(opts->password_file, &password, err, errlen) != STATUS_OK)
		return NULL;
	char (*hosts)[256] = NULL;
	int *ports = NULL, n = 0;
	if (opts->sentinels && *opts->sentinels) {
		hosts = xcalloc(REDIS_MAX_SENTINELS, sizeof *hosts);
		ports = xcalloc(REDIS_MAX_SENTINELS, sizeof *ports);
		const char *why = NULL;
		if (redis_sentinels_parse(opts->sentinels, hosts, ports, &n, err,
					  errlen) != STATUS_OK)
			why = "";
		else if (!opts->master_name || !*opts->master_name)
			why = "sentinels need a master_name";
		if (why) {
			if (*why && err && errlen)
				snprintf(err, errlen, "%s", why);
			free(hosts);
			free(ports);
			if (password) {
				explicit_bzero(password, strlen(password));
				free(password);
			}
			return NULL;
		}
	}
	struct redis *r = xcalloc(1, sizeof *r);
	r->url = u;
	r->sentinel_host = hosts;
	r->sentinel_port = ports;
	r->n_sentinels = n;
	r->master_name = n ? xstrdup(opts->master_name) : NULL;
	r->password = password;
	r->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 2000;
	r->read_timeout_ms = opts->read_timeout_ms > 0 ? opts->read_timeout_ms : 5000;
	backoff_init(&r->backoff, 50, 5000);
	return r;
}

void redis_disconnect(struct redis *r)
{
	if (r->ctx) {
		redisFree(r->ctx);
		r->ctx = NULL;
	}
}

void redis_free(struct redis *r)
{
	if (!r)
		return;
	redis_disconnect(r);
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->sentinel_host);
	free(r->sentinel_port);
	free(r->master_name);
	free(r);
}

static struct timeval tv_ms(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

/* Asks one sentinel for the primary's address; returns true and fills
 * host and *port when it names one.  Appends why not to why otherwise. */
static bool ask_sentinel(struct redis *r, int i, char *host, size_t hostlen, int *port,
			 char *why, size_t whylen)
{
	size_t used = strlen(why);
	struct timeval t = tv_ms(r->connect_timeout_ms);
	redisContext *c = redisConnectWithTimeout(r->sentinel_host[i], r->sentinel_port[i], t);
	redisReply *rep = NULL;
	const char *fail = NULL;
	if (!c || c->err)
		fail = c ? c->errstr : "out of memory";
	/* The sentinel's answer is bounded like its connect. */
	else if (redisSetTimeout(c, t) != REDIS_OK ||
		 !(rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", r->master_name)))
		fail = c->errstr[0] ? c->errstr : "no answer";
	else if (rep->type == REDIS_REPLY_ERROR)
		fail = rep->str;
	else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		 rep->element[0]->type != REDIS_REPLY_STRING ||
		 rep->element[1]->type != REDIS_REPLY_STRING)
		fail = "does not know the master name";
	bool ok = false;
	if (!fail) {
		char *end;
		long v = strtol(rep->element[1]->str, &end, 10);
		if (*end || v < 1 || v > 65535 || rep->element[0]->len >= hostlen) {
			fail = "named a bad address";
		} else {
			memcpy(host, rep->element[0]->str, rep->element[0]->len);
			host[rep->element[0]->len] = '\0';
			*port = (int)v;
			ok = true;
		}
	}
	if (fail && used < whylen)
		snprintf(why + used, whylen - used, "%s%s:%d: %s", used ? "; " : "",
			 r->sentinel_host[i], r->sentinel_port[i], fail);
	if (rep)
		freeReplyObject(rep);
	if (c)
		redisFree(c);
	return ok;
}

/* Finds the primary through the sentinels, trying each in turn from the one
 * that answered last. */
static enum status resolve(struct redis *r, char *host, size_t hostlen, int *port)
{
	char why[400] = "";
	for (int k = 0; k < r->n_sentinels; k++) {
		int i = (r->sentinel_next + k) % r->n_sentinels;
		if (ask_sentinel(r, i, host, hostlen, port, why, sizeof why)) {
			r->sentinel_next = i;
			return STATUS_OK;
		}
	}
	seterr(r, "redis: no sentinel names primary '%s' (%s)", r->master_name, why);
	return STATUS_TRANSIENT;
}

/* True when the server on c says it is a primary.  A replica (a demoted
 * primary that the sentinels have not yet reconfigured, or a stale answer)
 * would refuse every write. */
static enum status check_role(struct redis *r, redisContext *c)
{
	redisReply *rep = redisCommand(c, "ROLE");
	if (!rep) {
		seterr(r, "redis ROLE at %s: %s", r->address, c->errstr);
		return STATUS_TRANSIENT;
	}
	bool master = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
		      rep->element[0]->type == REDIS_REPLY_STRING &&
		      strcmp(rep->element[0]->str, "master") == 0;
	if (!master)
		seterr(r, "redis: %s is not a primary (ROLE: %s)", r->address,
		       rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
		       rep->element[0]->type == REDIS_REPLY_STRING ? rep->element[0]->str
		       : rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
	freeReplyObject(rep);
	return master ? STATUS_OK : STATUS_TRANSIENT;
}

enum status redis_connect(struct redis *r)
{
	redis_disconnect(r);
	struct timeval ct = tv_ms(r->connect_timeout_ms);
	char host[256];
	int port = r->url.port;
	snprintf(host, sizeof host, "%s", r->url.host);
	if (r->n_sentinels) {
		enum status st = resolve(r, host, sizeof host, &port);
		if (st != STATUS_OK)
			return st;
	}
	char was[sizeof r->address];
	memcpy(was, r->address, sizeof was);
	if (r->url.path[0] && !r->n_sentinels)
		snprintf(r->address, sizeof r->address, "unix:%s", r->url.path);
	else
		snprintf(r->address, sizeof r->address, "%s:%d", host, port);
	redisContext *c = r->url.path[0] && !r->n_sentinels
		? redisConnectUnixWithTimeout(r->url.path, ct)
		: redisConnectWithTimeout(host, port, ct);
	if (!c) {
		seterr(r, "redis connect: out of memory");
		return STATUS_TRANSIENT;
	}
	if (c->err) {
		seterr(r, "redis connect to %s: %s", r->address, c->errstr);
		redisFree(c);
		return STATUS_TRANSIENT;
	}
	if (redisSetTimeout(c, tv_ms(r->read_timeout_ms)) != REDIS_OK) {
		seterr(r, "redis: cannot set socket timeout: %s", c->errstr);
		redisFree(c);
		return STATUS_TRANSIENT;
	}
	redisReply *rep;
	if (r->password) {
		rep = redisCommand(c, "AUTH %s", r->password);
		if (!rep) {
			seterr(r, "redis AUTH: %s", c->errstr);
			redisFree(c);
			return STATUS_TRANSIENT;
		}
		if (rep->type == REDIS_REPLY_ERROR) {
			seterr(r, "redis AUTH refused: %s", rep->str);
			freeReplyObject(rep);
			redisFree(c);
			return STATUS_CONFIG;
		}
		freeReplyObject(rep);
	}
	if (r->url.db != 0) {
		rep = redisCommand(c, "SELECT %d", r->url.db);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			seterr(r, "redis SELECT %d: %s", r->url.db, rep ? rep->str : c->errstr);
			enum status st = rep ? STATUS_CONFIG : STATUS_TRANSIENT;
			if (rep)
				freeReplyObject(rep);
			redisFree(c);
			return st;
		}
		freeReplyObject(rep);
	}
	if (r->n_sentinels) {
		enum status st = check_role(r, c);
		if (st != STATUS_OK) {
			redisFree(c);
			return st;
		}
		if (strcmp(was, r->address) != 0)
			log_info("action=redis_primary master=%s address=%s%s%s",
				 log_quote(r->master_name), r->address,
				 was[0] ? " previous=" : "", was);
	}
	r->ctx = c;
	r->generation++;
	r->errmsg[0] = '\0';
	return STATUS_OK;
}

/* Checks a reply from hiredis: NULL means the connection broke. */
static redisReply *check(struct redis *r, redisReply *rep, enum status *st)
{
	enum status s = STATUS_OK;
	if (!rep) {
		seterr(r, "redis: %s", r->ctx && r->ctx->errstr[0] ? r->ctx->errstr
		       : "connection lost");
		redis_disconnect(r);
		s = STATUS_TRANSIENT;
	} else if (rep->type == REDIS_REPLY_ERROR && (strncmp(rep->str, "READONLY", 8) == 0 ||
						       strstr(rep->str, "-READONLY"))) {
		/* The primary was demoted under us (a failover): the next
		 * command reconnects, to the new primary with sentinels. */
		seterr(r, "redis: %s: %s", r->address, rep->str);
		freeReplyObject(rep);
		rep = NULL;
		redis_disconnect(r);
		s = STATUS_TRANSIENT;
	} else if (rep->type == REDIS_REPLY_ERROR) {
		seterr(r, "redis: %s", rep->str);
		/* A server still loading its data, or a replica being promoted,
		 * will answer soon. */
		s = (strncmp(rep->str, "LOADING", 7) == 0 || strncmp(rep->str, "BUSY ", 5) == 0 ||
		     strncmp(rep->str, "TRYAGAIN", 8) == 0 || strncmp(rep->str, "MASTERDOWN", 10) == 0)
			? STATUS_TRANSIENT : STATUS_INVALID;
		freeReplyObject(rep);
		rep = NULL;
	}
	if (st)
		*st = s;
	return rep;
}

/* Connects when disconnected, but not more often than the backoff allows:
 * while Redis is away, callers get STATUS_TRANSIENT at once instead of a
 * connect attempt per command. */
enum status redis_ensure(struct redis *r)
{
	if (r->ctx)
		return STATUS_OK;
	int64_t now = now_ms();
	if (now < r->next_attempt) {
		if (!r->errmsg[0])
			seterr(r, "redis: not connected (waiting to reconnect)");
		return STATUS_TRANSIENT;
	}
	enum status st = redis_connect(r);
	if (st == STATUS_OK)
		backoff_reset(&r->backoff);
	else
		r->next_attempt = now + backoff_next(&r->backoff);
	return st;
}

redisReply *redis_vcommand(struct redis *r, enum status *st, const char *fmt, va_list ap)
{
	enum status s = redis_ensure(r);
	if (s != STATUS_OK) {
		if (st)
			*st = s;
		return NULL;
	}
	return check(r, redisvCommand(r->ctx, fmt, ap), st);
}

redisReply *redis_command(struct redis *r, enum status *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redis_vcommand(r, st, fmt, ap);
	va_end(ap);
	return rep;
}

redisReply *redis_commandv(struct redis *r, enum status *st, int argc, const char **argv,
                           const size_t *argvlen)
{
	enum status s = redis_ensure(r);
	if (s != STATUS_OK) {
		if (st)
			*st = s;
		return NULL;
	}
	return check(r, redisCommandArgv(r->ctx, argc, argv, argvlen), st);
}

enum status redis_append(struct redis *r, const char *fmt, ...)
{
	enum status s = redis_ensure(r);
	if (s != STATUS_OK)
		return s;
	va_list ap;
	va_start(ap, fmt);
	int rc = redisvAppendCommand(r->ctx, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK) {
		seterr(r, "redis: cannot queue command");
		return STATUS_INVALID;
	}
	return STATUS_OK;
}

enum status redis_appendv(struct redis *r, int argc, const char **argv, const size_t *argvlen)
{
	enum status s = redis_ensure(r);
	if (s != STATUS_OK)
		return s;
	if (redisAppendCommandArgv(r->ctx, argc, argv, argvlen) != REDIS_OK) {
		seterr(r, "redis: cannot queue command");
		return STATUS_INVALID;
	}
	return STATUS_OK;
}

redisReply *redis_get_reply(struct redis *r, enum status *st)
{
	if (!r->ctx) {
		seterr(r, "redis: connection lost");
		if (st)
			*st = STATUS_TRANSIENT;
		return NULL;
	}
	void *rep = NULL;
	if (redisGetReply(r->ctx, &rep) != REDIS_OK)
		rep = NULL;
	return check(r, rep, st);
}

const char *redis_address(const struct redis *r)
{
	return r->address;
}

uint64_t redis_generation(const struct redis *r)
{
	return r->generation;
}

redisContext *redis_context(struct redis *r)
{
	return r->ctx;
}

const char *redis_errmsg(const struct redis *r)
{
	return r->errmsg;
}
