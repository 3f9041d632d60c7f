/* SPDX-License-Identifier: MIT */
/*
 * redis.h: one Redis connection (hiredis 0.14) with timeouts, AUTH and
 * reconnection.
 *
 * URLs: redis://host:port[/db] and unix:///path/to/redis.sock[?db=N].
 * A password in the URL (redis://:pw@host...) is rejected: URLs end up in
 * argv, logs and ps output.  The password comes from the environment
 * variable FRESHET_REDIS_PASSWORD when it is set and not empty, else from
 * the file named by password_file (first line, trailing newline stripped);
 * redis_password_load() is the one place that decides.  It is sent with
 * AUTH after every (re)connect, followed by SELECT db.
 *
 * Timeouts: connect_timeout_ms bounds the connect; read_timeout_ms bounds
 * every reply (hiredis' socket timeout).  A connection used for blocking
 * reads must have a read timeout above the BLOCK time: hiredis leaves the
 * context dead after a timed-out read.
 *
 * Reconnection: when a command fails because the connection broke (or the
 * server is away) redis_command() returns NULL with STATUS_TRANSIENT; the
 * next command reconnects first.  Failed reconnects back off (full jitter,
 * 50 ms doubling to 5 s): until the delay has passed, commands fail with
 * STATUS_TRANSIENT without trying, so a loop over a dead server does not
 * hammer it.  redis_connect() always tries.  redis_generation() counts successful
 * connects, so a consumer can tell that it must re-read its pending entries.
 *
 * Sentinel: with opts.sentinels set ("host:port,host:port,..."), the
 * handle does not connect to the URL's host but to the primary that the
 * sentinels name for opts.master_name, following the Sentinel client
 * protocol: it asks each sentinel in turn (starting with the one that
 * answered last; each with the connect timeout bounding both the connect
 * and the reply) `SENTINEL get-master-addr-by-name`, connects to the
 * address the first one that knows gives, and checks with ROLE that the
 * server really is a primary (a demoted primary, or a sentinel that has not
 * yet seen the failover, is refused with STATUS_TRANSIENT).  Every connect
 * resolves again, so a broken connection follows a failover at the next
 * command.  A -READONLY reply (the server became a replica under us) drops
 * the connection and returns STATUS_TRANSIENT, so the command is retried
 * against the new primary.  The URL's database number still applies; its
 * host and port are ignored.  Sentinels are asked without AUTH: the
 * password, if any, is the primary's.
 *
 * Thread rules: a struct redis is used by one thread at a time (hiredis
 * contexts are not thread-safe).
 */
#ifndef FRESHET_REDIS_H
#define FRESHET_REDIS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "status.h"

struct redis;

struct redis_opts {
	const char *url;            /* required */
	const char *password_file;  /* NULL or "": none; FRESHET_REDIS_PASSWORD wins */
	int connect_timeout_ms;     /* 0: 2000 */
	int read_timeout_ms;        /* 0: 5000 */
	const char *sentinels;      /* NULL or "": connect to url's host;
	                               else "host:port,..." (see above) */
	const char *master_name;    /* the primary's name at the sentinels;
	                               required with sentinels */
};

/* The most sentinels a handle asks. */
#define REDIS_MAX_SENTINELS 16

/* The highest database number a URL may name. */
#define REDIS_MAX_DB 65535

/* A parsed URL (see redis_url_parse()). */
struct redis_url {
	char host[256];   /* empty for unix sockets */
	int port;
	char path[256];   /* unix socket path, empty for TCP */
	int db;
};

/* Parses url into *out.  Returns STATUS_OK, or STATUS_CONFIG with a message
 * in err (errlen bytes, may be 0) for a malformed URL or one that carries a
 * password. */
enum status redis_url_parse(const char *url, struct redis_url *out,
                            char *err, size_t errlen);

/* Parses a sentinel list ("host:port,host:port", spaces after commas
 * allowed; the port is required) into hosts (each REDIS_MAX_SENTINELS
 * entries of 256 bytes) and ports, and sets *n.  Returns STATUS_OK, or
 * STATUS_CONFIG with a message in err (errlen bytes, may be 0) for an empty
 * list, a malformed entry or more than REDIS_MAX_SENTINELS. */
enum status redis_sentinels_parse(const char *list, char hosts[][256], int *ports,
				  int *n, char *err, size_t errlen);

/* Decides the Redis password, for redis_new() and the configuration alike:
 * FRESHET_REDIS_PASSWORD when set and not empty (password_file is then not
 * opened), else the first line of password_file, else none.  A file open to
 * group or others (mode & 077) is used but logged as a warning naming it,
 * once per path and process.  On STATUS_OK sets *out to the password or
 * NULL for none (caller frees, ideally after explicit_bzero()).  Returns
 * STATUS_IO when the file cannot be read and STATUS_CONFIG when its first
 * line is empty, with the reason in err (errlen bytes, may be 0).
 * Thread-safe. */
enum status redis_password_load(const char *password_file, char **out,
				char *err, size_t errlen);

/* Creates a handle (not yet connected; copies what it needs from opts).
 * Returns NULL only when the URL or the sentinel list is malformed, the
 * sentinels come without a master_name, or the password cannot be loaded
 * (redis_password_load()), with the reason in err (errlen bytes). */
struct redis *redis_new(const struct redis_opts *opts, char *err, size_t errlen);

/* Connects (or reconnects), sends AUTH and SELECT.  Returns STATUS_OK,
 * STATUS_TRANSIENT when the server cannot be reached (with sentinels: no
 * sentinel answers, none knows master_name, or the server named is not a
 * primary), STATUS_CONFIG when it refuses the password.  Message in
 * redis_errmsg(). */
enum status redis_connect(struct redis *r);

/* Connects if not connected, subject to the reconnect backoff.  STATUS_OK
 * when connected; STATUS_TRANSIENT (or STATUS_CONFIG) otherwise. */
enum status redis_ensure(struct redis *r);

/* Runs a command (printf-like, hiredis syntax: %s, %b with a length, %d...).
 * Connects first when not connected.  Returns the reply (caller frees with
 * freeReplyObject()) and sets *st to STATUS_OK, or returns NULL and sets *st
 * to STATUS_TRANSIENT (connection lost, or -READONLY from a demoted
 * primary: it will reconnect at the next call; or a server error that
 * passes: LOADING, BUSY, TRYAGAIN, MASTERDOWN) or STATUS_INVALID for
 * another server error reply (message in redis_errmsg(); the reply is
 * freed).  st may be NULL. */
redisReply *redis_command(struct redis *r, enum status *st, const char *fmt, ...);
redisReply *redis_vcommand(struct redis *r, enum status *st, const char *fmt, va_list ap);
/* The same with an argument vector (argvlen may be NULL for C strings). */
redisReply *redis_commandv(struct redis *r, enum status *st, int argc,
                           const char **argv, const size_t *argvlen);

/* Pipelining: queue commands with redis_append*(), then collect exactly as
 * many replies with redis_get_reply() (same return rules as
 * redis_command()).  A broken connection drops the queued commands. */
enum status redis_append(struct redis *r, const char *fmt, ...);
enum status redis_appendv(struct redis *r, int argc, const char **argv,
                          const size_t *argvlen);
redisReply *redis_get_reply(struct redis *r, enum status *st);

/* Drops the connection; the next command reconnects. */
void redis_disconnect(struct redis *r);

/* The address connected to last ("host:port" or "unix:/path"; "" before
 * the first connect).  With sentinels, the primary they named.  Valid until
 * the next call on r. */
const char *redis_address(const struct redis *r);

/* Number of successful connects so far (0 before the first). */
uint64_t redis_generation(const struct redis *r);
/* The hiredis context, or NULL while disconnected (for tests). */
redisContext *redis_context(struct redis *r);

/* The last error message (never NULL; "" when none).  Valid until the next
 * call on r. */
const char *redis_errmsg(const struct redis *r);

/* Disconnects and frees r.  NULL is a no-op. */
void redis_free(struct redis *r);

#endif
