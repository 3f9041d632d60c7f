/* SPDX-License-Identifier: MIT */
/*
 * stream-ops.c: the operator's side of the event queue (see stream-ops.h):
 * partition count, queue depth, trimming and the dead letters.
 *
 * It shares struct stream with stream.c (stream-private.h) but touches only
 * what the operator needs: the control connection, always with the mutex
 * held, the wiki and the error message.  Nothing here reads a partition's
 * consumer bookkeeping, so these calls never change what stream_read()
 * hands out; a replayed dead letter is a new entry of its partition.
 */
#include "stream-ops.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream-private.h"
#include "xmalloc.h"

enum status stream_partitions_get(struct redis *r, const char *wiki, int *out,
                                  char *err, size_t errlen)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "GET freshet:{%s}:partitions", wiki);
	if (!rep) {
		if (err && errlen)
			snprintf(err, errlen, "redis: %s", redis_errmsg(r));
		return st;
	}
	if (rep->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		if (err && errlen)
			snprintf(err, errlen, "wiki %s has no published partition count", wiki);
		return STATUS_NOT_FOUND;
	}
	long long n = 0;
	if (!parse_count(rep->str, STREAM_MAX_PARTITIONS, &n) || n < 1) {
		/* Dividing by it would crash; guessing would misroute. */
		if (err && errlen)
			snprintf(err, errlen, "Redis key freshet:{%s}:partitions holds no "
			         "partition count (an integer from 1 to %d): set it to "
			         "the wiki's shards", wiki, STREAM_MAX_PARTITIONS);
		freeReplyObject(rep);
		return STATUS_INVALID;
	}
	*out = (int)n;
	freeReplyObject(rep);
	return STATUS_OK;
}

/* The group's XINFO GROUPS entry for key (caller frees *hold). */
static const redisReply *group_info(struct stream *s, const char *key, redisReply **hold,
                                    enum status *st)
{
	*hold = redis_command(s->ctl, st, "XINFO GROUPS %s", key);
	if (!*hold)
		return NULL;
	for (size_t i = 0; (*hold)->type == REDIS_REPLY_ARRAY && i < (*hold)->elements; i++) {
		const redisReply *name = field((*hold)->element[i], "name");
		if (name && name->type == REDIS_REPLY_STRING && strcmp(name->str, STREAM_GROUP) == 0)
			return (*hold)->element[i];
	}
	*st = STATUS_NOT_FOUND;
	return NULL;
}

enum status stream_trim(struct stream *s, int p, long long *trimmed)
{
	if (p < 0 || p >= s->partitions)
		return STATUS_INVALID;
	char key[256], minid[STREAM_ID_MAX];
	stream_key(s, p, key, sizeof key);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *hold = NULL, *pend = NULL, *rep = NULL;
	const redisReply *g = group_info(s, key, &hold, &st);
	if (!g) {
		if (st == STATUS_NOT_FOUND)
			seterr(s, "trim %s: no consumer group %s", key, STREAM_GROUP);
		else
			redis_fail(s, s->ctl, st, "XINFO GROUPS");
		goto out;
	}
	const redisReply *last = field(g, "last-delivered-id");
	struct sid m;
	if (!last || last->type != REDIS_REPLY_STRING || !parse_sid(last->str, &m)) {
		seterr(s, "trim %s: no last-delivered-id", key);
		st = STATUS_INVALID;
		goto out;
	}
	/* The oldest entry still pending bounds the trim too: it was delivered
	 * but not acked. */
	pend = redis_command(s->ctl, &st, "XPENDING %s %s", key, STREAM_GROUP);
	if (!pend) {
		redis_fail(s, s->ctl, st, "XPENDING");
		goto out;
	}
	struct sid oldest;
	if (pend->type == REDIS_REPLY_ARRAY && pend->elements >= 2 &&
	    pend->element[0]->integer > 0 && pend->element[1]->type == REDIS_REPLY_STRING &&
	    parse_sid(pend->element[1]->str, &oldest) && sid_cmp(oldest, m) < 0)
		m = oldest;
	snprintf(minid, sizeof minid, "%" PRIu64 "-%" PRIu64, m.ms, m.seq);
	rep = redis_command(s->ctl, &st, "XTRIM %s MINID %s", key, minid);
	if (!rep) {
		redis_fail(s, s->ctl, st, "XTRIM");
		goto out;
	}
	if (trimmed)
		*trimmed = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
out:
	if (hold)
		freeReplyObject(hold);
	if (pend)
		freeReplyObject(pend);
	if (rep)
		freeReplyObject(rep);
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_depth(struct stream *s, int p, long long *lag, long long *pending)
{
	if (p < 0 || p >= s->partitions)
		return STATUS_INVALID;
	char key[256];
	stream_key(s, p, key, sizeof key);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *hold = NULL;
	const redisReply *g = group_info(s, key, &hold, &st);
	if (g) {
		const redisReply *l = field(g, "lag"), *pe = field(g, "pending");
		if (lag)
			*lag = l && l->type == REDIS_REPLY_INTEGER ? l->integer : -1;
		if (pending)
			*pending = pe && pe->type == REDIS_REPLY_INTEGER ? pe->integer : 0;
	} else if (st != STATUS_NOT_FOUND) {
		redis_fail(s, s->ctl, st, "XINFO GROUPS");
	} else {
		seterr(s, "%s: no consumer group", key);
	}
	if (hold)
		freeReplyObject(hold);
	pthread_mutex_unlock(&s->mu);
	return st;
}

/* Dead letters. */

static void dead_from_reply(struct stream_dead *d, const redisReply *e)
{
	memset(d, 0, sizeof *d);
	snprintf(d->id, sizeof d->id, "%s", e->element[0]->str);
	const redisReply *f = e->elements > 1 ? e->element[1] : NULL;
	for (size_t k = 0; f && f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
		const char *name = f->element[k]->str;
		const redisReply *v = f->element[k + 1];
		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(name, "payload") == 0) {
			d->payload = xstrndup(v->str, v->len);
			d->len = v->len;
		} else if (strcmp(name, "reason") == 0) {
			d->reason = xstrdup(v->str);
		} else if (strcmp(name, "stream") == 0) {
			d->stream = xstrdup(v->str);
		} else if (strcmp(name, "id") == 0) {
			d->source_id = xstrdup(v->str);
		} else if (strcmp(name, "deliveries") == 0) {
			d->deliveries = atol(v->str);
		} else if (strcmp(name, "time") == 0) {
			d->time = xstrdup(v->str);
		}
	}
	if (!d->payload)
		d->payload = xstrdup("");
	if (!d->reason)
		d->reason = xstrdup("");
	if (!d->stream)
		d->stream = xstrdup("");
	if (!d->source_id)
		d->source_id = xstrdup("");
	if (!d->time)
		d->time = xstrdup("");
}

void stream_dead_free(struct stream_dead *d, size_t n)
{
	if (!d)
		return;
	for (size_t i = 0; i < n; i++) {
		free(d[i].payload);
		free(d[i].reason);
		free(d[i].stream);
		free(d[i].source_id);
		free(d[i].time);
	}
	free(d);
}

static enum status dead_range(struct stream *s, const char *start, const char *end,
                              size_t count, struct stream_dead **out, size_t *n)
{
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	enum status st;
	/* hiredis 0.14's format parser knows no %zu. */
	redisReply *rep = redis_command(s->ctl, &st, "XRANGE %s %s %s COUNT %lu", dkey, start,
	                                end, (unsigned long)count);
	if (!rep)
		return redis_fail(s, s->ctl, st, "XRANGE dead letters");
	size_t k = 0;
	struct stream_dead *d = xcalloc(rep->elements ? rep->elements : 1, sizeof *d);
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const redisReply *e = rep->element[i];
		if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1)
			dead_from_reply(&d[k++], e);
	}
	freeReplyObject(rep);
	*out = d;
	*n = k;
	return STATUS_OK;
}

enum status stream_dead_list(struct stream *s, const char *after, size_t count,
                             struct stream_dead **out, size_t *n)
{
	char start[STREAM_ID_MAX + 2];
	if (after && *after)
		snprintf(start, sizeof start, "(%s", after);
	else
		strcpy(start, "-");
	pthread_mutex_lock(&s->mu);
	enum status st = dead_range(s, start, "+", count ? count : 100, out, n);
	pthread_mutex_unlock(&s->mu);
	return st;
}

static bool id_ok(const char *id)
{
	struct sid x;
	return id && strlen(id) < STREAM_ID_MAX && parse_sid(id, &x);
}

enum status stream_dead_show(struct stream *s, const char *id, struct stream_dead **out)
{
	if (!id_ok(id)) {
		seterr(s, "not a stream id: %s", id ? id : "(null)");
		return STATUS_INVALID;
	}
	size_t n = 0;
	struct stream_dead *d = NULL;
	pthread_mutex_lock(&s->mu);
	enum status st = dead_range(s, id, id, 1, &d, &n);
	if (st == STATUS_OK && n == 0) {
		seterr(s, "no dead letter %s", id);
		stream_dead_free(d, 0);
		st = STATUS_NOT_FOUND;
	} else if (st == STATUS_OK) {
		*out = d;
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_dead_replay(struct stream *s, const char *id)
{
	struct stream_dead *d = NULL;
	enum status st = stream_dead_show(s, id, &d);
	if (st != STATUS_OK)
		return st;
	pthread_mutex_lock(&s->mu);
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	if (key_partition(s, d->stream) < 0) {
		seterr(s, "dead letter %s: source stream \"%s\" is not a partition of wiki %s",
		       id, d->stream, s->wiki);
		st = STATUS_INVALID;
		goto out;
	}
	const char *argv[] = { "XADD", d->stream, "*", "event", d->payload };
	size_t argvlen[] = { 4, strlen(d->stream), 1, 5, d->len };
	if ((st = redis_append(s->ctl, "MULTI")) != STATUS_OK ||
	    (st = redis_appendv(s->ctl, 5, argv, argvlen)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "XDEL %s %s", dkey, id)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "EXEC")) != STATUS_OK) {
		redis_fail(s, s->ctl, st, "replay");
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		enum status rs;
		redisReply *rep = redis_get_reply(s->ctl, &rs);
		if (!rep) {
			if (st == STATUS_OK)
				st = redis_fail(s, s->ctl, rs, "replay");
			if (rs == STATUS_TRANSIENT)
				break;
			continue;
		}
		if (i == 3 && rep->type != REDIS_REPLY_ARRAY && st == STATUS_OK) {
			seterr(s, "replay: transaction failed");
			st = STATUS_TRANSIENT;
		}
		freeReplyObject(rep);
	}
out:
	pthread_mutex_unlock(&s->mu);
	stream_dead_free(d, 1);
	return st;
}

enum status stream_dead_drop(struct stream *s, const char *id)
{
	if (!id_ok(id)) {
		seterr(s, "not a stream id: %s", id ? id : "(null)");
		return STATUS_INVALID;
	}
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "XDEL %s %s", dkey, id);
	if (!rep) {
		redis_fail(s, s->ctl, st, "XDEL");
	} else {
		if (rep->type != REDIS_REPLY_INTEGER || rep->integer == 0) {
			seterr(s, "no dead letter %s", id);
			st = STATUS_NOT_FOUND;
		}
		freeReplyObject(rep);
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_dead_count(struct stream *s, long long *n)
{
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "XLEN %s", dkey);
	if (!rep) {
		redis_fail(s, s->ctl, st, "XLEN");
	} else {
		*n = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
		freeReplyObject(rep);
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}
