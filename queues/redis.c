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
 * when to start over.
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
	struct redis *r = xcalloc(1, sizeof *r);
	r->url = u;
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
	free(r);
}

static struct timeval tv_ms(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

enum status redis_connect(struct redis *r)
{
	redis_disconnect(r);
	struct timeval ct = tv_ms(r->connect_timeout_ms);
	redisContext *c = r->url.path[0]
		? redisConnectUnixWithTimeout(r->url.path, ct)
		: redisConnectWithTimeout(r->url.host, r->url.port, ct);
	if (!c) {
		seterr(r, "redis connect: out of memory");
		return STATUS_TRANSIENT;
	}
	if (c->err) {
		if (r->url.path[0])
			seterr(r, "redis connect to unix:%s: %s", r->url.path, c->errstr);
		else
			seterr(r, "redis connect to %s:%d: %s", r->url.host, r->url.port,
			       c->errstr);
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
