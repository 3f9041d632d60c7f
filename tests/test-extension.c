/* SPDX-License-Identifier: MIT */
/*
 * test-extension.c: the Freshet MediaWiki extension end to end.
 *
 * Each test runs a real redis-server and a real MediaWiki with the extension
 * loaded, changes pages through the Action API, and reads back the raw
 * stream entries (XRANGE) the extension wrote: one field `event` holding a
 * mediawiki/page/change (or page_rerender) JSON, in the partition
 * page_id mod partitions, in the order the changes were made.
 *
 * Events are published when the change's transaction commits, which for
 * some changes (moves) is after MediaWiki has answered, so the tests wait
 * for the expected number of entries before they look, and then a little
 * longer to see that nothing else arrives.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mw.h"
#include "testsupport.h"

#define PARTITIONS 4

static struct test_redis *redis;
static struct mw *mw;
static redisContext *rc;

static void connect_redis(void)
{
	rc = redisConnectUnix(redis->socket);
	cr_assert(rc && !rc->err, "redis connect: %s", rc ? rc->errstr : "?");
}

static void start_wiki(void)
{
	/* A short circuit breaker, so that a test can see Redis used again
	 * soon after an outage. */
	struct mw_opts o = { .freshet = true, .redis_socket = redis->socket,
			     .partitions = PARTITIONS, .redis_retry_after = 1 };
	mw = mw_start(&o);
}

static void setup(void)
{
	redis = test_redis_start();
	connect_redis();
	start_wiki();
}

static void teardown(void)
{
	mw_stop(mw);
	if (rc)
		redisFree(rc);
	test_redis_stop(redis);
}

TestSuite(extension, .init = setup, .fini = teardown, .timeout = 120);

static char *stream_key(long page_id, int partitions)
{
	char *k;
	cr_assert(asprintf(&k, "freshet:{%s:p%ld}", mw_wiki_id(mw),
			   page_id % partitions) > 0);
	return k;
}

/* The events of one stream, oldest first, as a JSON array (caller decrefs);
 * every entry must have exactly the one field `event`, holding JSON. */
static json_t *stream_events(const char *key)
{
	redisReply *r = redisCommand(rc, "XRANGE %s - +", key);
	cr_assert(r && r->type == REDIS_REPLY_ARRAY, "XRANGE %s: %s", key,
		  r && r->type == REDIS_REPLY_ERROR ? r->str : "no array");
	json_t *out = json_array();
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *entry = r->element[i];
		cr_assert_eq(entry->elements, 2);
		redisReply *fields = entry->element[1];
		cr_assert_eq(fields->elements, 2, "entry %s has %zu fields",
			     entry->element[0]->str, fields->elements / 2);
		cr_assert_str_eq(fields->element[0]->str, "event");
		json_error_t err;
		json_t *ev = json_loads(fields->element[1]->str, 0, &err);
		cr_assert_not_null(ev, "entry %s: bad JSON: %s", entry->element[0]->str,
				   err.text);
		json_array_append_new(out, ev);
	}
	freeReplyObject(r);
	return out;
}

static size_t count_all(void)
{
	size_t n = 0;
	for (long p = 0; p < PARTITIONS; p++) {
		char *k = stream_key(p, PARTITIONS);
		redisReply *r = redisCommand(rc, "XLEN %s", k);
		cr_assert(r && r->type == REDIS_REPLY_INTEGER);
		n += (size_t)r->integer;
		freeReplyObject(r);
		free(k);
	}
	return n;
}

/* One line per event of every partition ("p2: create 5 Title"), for
 * failure messages.  Caller frees. */
static char *describe_streams(void)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	for (long p = 0; p < PARTITIONS; p++) {
		char *k = stream_key(p, PARTITIONS);
		json_t *evs = stream_events(k);
		size_t i;
		json_t *e;
		json_array_foreach(evs, i, e) {
			const char *kind = json_string_value(
				json_object_get(e, "page_change_kind"));
			json_t *page = json_object_get(e, "page");
			fprintf(f, "\n  p%ld: %s %lld %s", p, kind ? kind : "rerender",
				(long long)json_integer_value(json_object_get(
					page ? page : e, "page_id")),
				json_string_value(json_object_get(page ? page : e,
								  "page_title")));
		}
		json_decref(evs);
		free(k);
	}
	fclose(f);
	return out;
}

/* Waits until the wiki's streams hold want entries in all, then 300 ms
 * more, and checks that no more arrived. */
static void wait_total(size_t want)
{
	size_t n = 0;
	for (int i = 0; i < 100 && (n = count_all()) < want; i++)
		usleep(100 * 1000);
	if (n == want) {
		usleep(300 * 1000);
		n = count_all();
	}
	if (n != want)
		cr_assert_fail("the streams hold %zu events, want %zu:%s", n, want,
			       describe_streams());
}

static const char *sget(json_t *ev, const char *a, const char *b)
{
	json_t *v = json_object_get(ev, a);
	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

static long iget(json_t *ev, const char *a, const char *b)
{
	json_t *v = json_object_get(ev, a);
	if (b)
		v = json_object_get(v, b);
	cr_assert(json_is_integer(v), "%s.%s is not an integer", a, b ? b : "");
	return (long)json_integer_value(v);
}

/* Checks the fields every page change carries. */
static void check_change(json_t *ev, const char *kind, const char *changelog,
			 long page_id, const char *title, int ns)
{
	cr_assert_str_eq(sget(ev, "$schema", NULL), "/mediawiki/page/change/1.2.0");
	cr_assert_str_eq(sget(ev, "page_change_kind", NULL), kind);
	cr_assert_str_eq(sget(ev, "changelog_kind", NULL), changelog);
	cr_assert_str_eq(sget(ev, "wiki_id", NULL), "testwiki");
	cr_assert_str_eq(sget(ev, "meta", "domain"), "127.0.0.1");
	cr_assert_not_null(sget(ev, "meta", "dt"));
	const char *dt = sget(ev, "dt", NULL);
	cr_assert(dt && strlen(dt) == 20 && dt[10] == 'T' && dt[19] == 'Z',
		  "dt %s is not ISO 8601 UTC", dt ? dt : "(none)");
	cr_assert_eq(iget(ev, "page", "page_id"), page_id);
	if (title)
		cr_assert_str_eq(sget(ev, "page", "page_title"), title);
	cr_assert_eq(iget(ev, "page", "namespace_id"), ns);
	cr_assert(json_is_boolean(json_object_get(json_object_get(ev, "page"),
						  "is_redirect")));
}

Test(extension, lifecycle_events_arrive_in_order_in_the_page_partition)
{
	long pid, r1, r2, r3, upid;
	cr_assert(mw_edit(mw, "Alpha page", "one", &pid, &r1));
	cr_assert(mw_edit(mw, "Alpha page", "two", NULL, &r2));
	/* A null edit publishes nothing. */
	cr_assert_not(mw_edit(mw, "Alpha page", "two", NULL, NULL));
	mw_move(mw, "Alpha page", "Talk:Beta page", false);
	struct mw_page_info info;
	cr_assert(mw_page_info(mw, "Talk:Beta page", &info));
	cr_assert_eq(info.page_id, pid);
	r3 = info.rev_id;
	mw_delete(mw, "Talk:Beta page");
	mw_undelete(mw, "Talk:Beta page", &upid);
	wait_total(5);

	char *key = stream_key(pid, PARTITIONS);
	json_t *evs = stream_events(key);
	cr_assert_eq(json_array_size(evs), 5, "%s holds %zu events", key,
		     json_array_size(evs));
	json_t *e;

	e = json_array_get(evs, 0);
	check_change(e, "create", "insert", pid, "Alpha_page", 0);
	cr_assert_eq(iget(e, "revision", "rev_id"), r1);
	cr_assert_str_eq(sget(e, "performer", "user_text"), "Admin");
	cr_assert_not(json_is_true(json_object_get(json_object_get(e, "page"),
						   "is_redirect")));

	e = json_array_get(evs, 1);
	check_change(e, "edit", "update", pid, "Alpha_page", 0);
	cr_assert_eq(iget(e, "revision", "rev_id"), r2);
	cr_assert_eq(iget(e, "revision", "rev_parent_id"), r1);

	e = json_array_get(evs, 2);
	check_change(e, "move", "update", pid, "Talk:Beta_page", 1);
	cr_assert_eq(iget(e, "revision", "rev_id"), r3);
	json_t *prior = json_object_get(json_object_get(e, "prior_state"), "page");
	cr_assert_str_eq(json_string_value(json_object_get(prior, "page_title")),
			 "Alpha_page");
	cr_assert_eq(json_integer_value(json_object_get(prior, "namespace_id")), 0);
	cr_assert_null(json_object_get(e, "created_redirect_page"));

	e = json_array_get(evs, 3);
	check_change(e, "delete", "delete", pid, "Talk:Beta_page", 1);
	cr_assert_eq(iget(e, "revision", "rev_id"), r3, "delete names the last revision");

	e = json_array_get(evs, 4);
	check_change(e, "undelete", "insert", upid, "Talk:Beta_page", 1);
	cr_assert_eq(iget(e, "revision", "rev_id"), r3);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(
			     json_object_get(e, "prior_state"), "page"), "page_id")),
		     pid);

	/* Each change has its own event id. */
	for (size_t i = 0; i < 5; i++)
		for (size_t k = i + 1; k < 5; k++)
			cr_assert_str_neq(sget(json_array_get(evs, i), "meta", "id"),
					  sget(json_array_get(evs, k), "meta", "id"));
	json_decref(evs);
	free(key);

	/* The partition count the extension set. */
	redisReply *r = redisCommand(rc, "GET freshet:{testwiki}:partitions");
	cr_assert(r && r->type == REDIS_REPLY_STRING);
	cr_assert_str_eq(r->str, "4");
	freeReplyObject(r);
}

/* Hiding an older revision's text announces the page, with its latest
 * revision and nothing of what was hidden: the worker scrubs its shard. */
Test(extension, hiding_a_revision_publishes_a_visibility_change)
{
	long pid, r1, r2;
	cr_assert(mw_edit(mw, "Gamma page", "a secret", &pid, &r1));
	cr_assert(mw_edit(mw, "Gamma page", "no secret", NULL, &r2));
	wait_total(2);
	char params[256];
	snprintf(params, sizeof params,
		 "action=revisiondelete&type=revision"
		 "&target=Gamma_page&ids=%ld&hide=content|comment&reason=why",
		 r1);
	json_t *r = mw_api(mw, true, params);
	cr_assert_null(json_object_get(r, "error"), "revisiondelete failed");
	json_decref(r);
	wait_total(3);
	char *key = stream_key(pid, PARTITIONS);
	json_t *evs = stream_events(key);
	cr_assert_eq(json_array_size(evs), 3, "%s holds %zu events", key, json_array_size(evs));
	json_t *e = json_array_get(evs, 2);
	check_change(e, "visibility_change", "update", pid, "Gamma_page", 0);
	cr_assert_eq(iget(e, "revision", "rev_id"), r2);
	cr_assert_null(json_object_get(e, "performer"));
	cr_assert_null(json_object_get(e, "comment"));
	cr_assert_null(json_object_get(json_object_get(e, "revision"), "content_slots"));
	json_decref(evs);
	free(key);
}

Test(extension, move_leaving_a_redirect_also_creates_the_redirect)
{
	long pid, rid_create;
	mw_edit(mw, "Gamma", "gamma text", &pid, &rid_create);
	mw_move(mw, "Gamma", "Help:Delta", true);
	struct mw_page_info moved, redir;
	cr_assert(mw_page_info(mw, "Help:Delta", &moved));
	cr_assert(mw_page_info(mw, "Gamma", &redir));
	cr_assert(redir.is_redirect);
	wait_total(3);

	/* The redirect: a create of its own page id, in its own partition. */
	char *rkey = stream_key(redir.page_id, PARTITIONS);
	json_t *revs = stream_events(rkey);
	json_t *create = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(revs, i, e)
		if (iget(e, "page", "page_id") == redir.page_id)
			create = e;
	cr_assert_not_null(create, "no event for the redirect page %ld in %s",
			   redir.page_id, rkey);
	check_change(create, "create", "insert", redir.page_id, "Gamma", 0);
	cr_assert(json_is_true(json_object_get(json_object_get(create, "page"),
					       "is_redirect")));
	cr_assert_eq(iget(create, "revision", "rev_id"), redir.rev_id);
	cr_assert_str_eq(sget(json_object_get(create, "page"), "redirect_page_link",
			      "page_title"), "Help:Delta");

	/* The moved page: create, then move naming the redirect. */
	char *key = stream_key(pid, PARTITIONS);
	json_t *evs = stream_events(key);
	json_t *mine = json_array();
	json_array_foreach(evs, i, e)
		if (iget(e, "page", "page_id") == pid)
			json_array_append(mine, e);
	cr_assert_eq(json_array_size(mine), 2);
	check_change(json_array_get(mine, 0), "create", "insert", pid, "Gamma", 0);
	e = json_array_get(mine, 1);
	check_change(e, "move", "update", pid, "Help:Delta", 12);
	cr_assert_eq(iget(e, "revision", "rev_id"), moved.rev_id);
	json_t *crp = json_object_get(e, "created_redirect_page");
	cr_assert_eq(json_integer_value(json_object_get(crp, "page_id")), redir.page_id);
	cr_assert_str_eq(json_string_value(json_object_get(crp, "page_title")), "Gamma");
	cr_assert(json_is_true(json_object_get(crp, "is_redirect")));
	json_decref(mine);
	json_decref(evs);
	json_decref(revs);
	free(key);
	free(rkey);
}

Test(extension, pages_spread_over_partitions_by_page_id)
{
	enum { N = 12 };
	long pids[N], rids[N];
	char *titles[N], *texts[N];
	for (int i = 0; i < N; i++) {
		cr_assert(asprintf(&titles[i], "Spread %d", i) > 0);
		cr_assert(asprintf(&texts[i], "text %d", i) > 0);
	}
	mw_seed(mw, N, (const char *const *)titles, (const char *const *)texts,
		pids, rids);
	wait_total(N);
	for (long p = 0; p < PARTITIONS; p++) {
		char *key = stream_key(p, PARTITIONS);
		json_t *evs = stream_events(key);
		size_t i;
		json_t *e;
		size_t want = 0;
		for (int k = 0; k < N; k++)
			want += pids[k] % PARTITIONS == p;
		cr_assert_eq(json_array_size(evs), want, "%s", key);
		json_array_foreach(evs, i, e) {
			long pid = iget(e, "page", "page_id");
			cr_assert_eq(pid % PARTITIONS, p, "page %ld in %s", pid, key);
			int k = 0;
			while (k < N && pids[k] != pid)
				k++;
			cr_assert_lt(k, N, "event for unknown page %ld", pid);
			check_change(e, "create", "insert", pid, NULL, 0);
			cr_assert_eq(iget(e, "revision", "rev_id"), rids[k]);
		}
		json_decref(evs);
		free(key);
	}
	for (int i = 0; i < N; i++) {
		free(titles[i]);
		free(texts[i]);
	}
}

/* A partition count already in Redis wins over the configured one. */
Test(extension, stored_partition_count_wins)
{
	redisReply *r = redisCommand(rc, "SET freshet:{testwiki}:partitions 3");
	freeReplyObject(r);
	long pid, rid;
	mw_edit(mw, "Three ways", "text", &pid, &rid);
	char *key = stream_key(pid, 3);
	json_t *evs = NULL;
	for (int i = 0; i < 50; i++) {
		json_decref(evs);
		evs = stream_events(key);
		if (json_array_size(evs) > 0)
			break;
		usleep(100 * 1000);
	}
	cr_assert_eq(json_array_size(evs), 1, "no event in %s", key);
	cr_assert_eq(iget(json_array_get(evs, 0), "revision", "rev_id"), rid);
	json_decref(evs);
	free(key);
}

Test(extension, redis_down_spools_and_the_edit_succeeds)
{
	long pid, rid;
	mw_edit(mw, "Before outage", "text", &pid, NULL);
	wait_total(1);
	test_redis_pause(redis);
	redisFree(rc);
	rc = NULL;

	cr_assert(mw_edit(mw, "During outage", "still saved", &pid, &rid));
	struct mw_page_info info;
	cr_assert(mw_page_info(mw, "During outage", &info));
	cr_assert_eq(info.rev_id, rid);

	size_t len;
	char *spool = NULL;
	for (int i = 0; i < 50 && !spool; i++) {
		spool = test_read_file(mw_spool_path(mw), &len);
		if (!spool)
			usleep(100 * 1000);
	}
	cr_assert_not_null(spool, "no spool file %s", mw_spool_path(mw));
	/* One event, one line. */
	cr_assert_gt(len, 0);
	cr_assert_eq(strchr(spool, '\n'), spool + len - 1, "not one line: %s", spool);
	json_error_t err;
	json_t *line = json_loads(spool, 0, &err);
	cr_assert_not_null(line, "spool line is not JSON: %s", err.text);
	char *key = stream_key(pid, PARTITIONS);
	cr_assert_str_eq(sget(line, "stream", NULL), key);
	json_t *ev = json_object_get(line, "event");
	check_change(ev, "create", "insert", pid, "During_outage", 0);
	cr_assert_eq(iget(ev, "revision", "rev_id"), rid);
	json_decref(line);
	free(spool);
	free(key);

	/* Back up: once the breaker's second is over, the next change goes to
	 * Redis again. */
	test_redis_resume(redis);
	connect_redis();
	sleep(2);
	mw_edit(mw, "After outage", "text", NULL, NULL);
	wait_total(2);
}

Test(extension, template_change_rerenders_the_pages_using_it)
{
	long tpl, user;
	mw_edit(mw, "Template:Sig", "signed", &tpl, NULL);
	mw_edit(mw, "Signed page", "{{Sig}} here", &user, NULL);
	mw_edit(mw, "Template:Sig", "signed again", NULL, NULL);
	wait_total(3);
	mw_run_jobs(mw);
	wait_total(4);
	char *key = stream_key(user, PARTITIONS);
	json_t *evs = stream_events(key);
	json_t *last = json_array_get(evs, json_array_size(evs) - 1);
	cr_assert_str_eq(sget(last, "$schema", NULL),
			 "/mediawiki/cirrussearch/page_rerender/1.0.0");
	cr_assert_eq(iget(last, "page_id", NULL), user);
	cr_assert_str_eq(sget(last, "page_title", NULL), "Signed_page");
	cr_assert_eq(iget(last, "namespace_id", NULL), 0);
	cr_assert_str_eq(sget(last, "wiki_id", NULL), "testwiki");
	json_decref(evs);
	free(key);
}

Test(extension, titles_are_db_keys_in_utf8)
{
	long pid, rid;
	mw_edit(mw, "Category:Über Straße 東京", "[[Category:Städte]]", &pid, &rid);
	wait_total(1);
	char *key = stream_key(pid, PARTITIONS);
	/* The raw entry holds the characters themselves, not \u escapes. */
	redisReply *r = redisCommand(rc, "XRANGE %s - +", key);
	cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	const char *raw = r->element[0]->element[1]->element[1]->str;
	cr_assert_not_null(strstr(raw, "\"Category:Über_Straße_東京\""), "%s", raw);
	freeReplyObject(r);
	json_t *evs = stream_events(key);
	check_change(json_array_get(evs, 0), "create", "insert", pid,
		     "Category:Über_Straße_東京", 14);
	json_decref(evs);
	free(key);
}

static void setup_redis_only(void)
{
	redis = test_redis_start();
	connect_redis();
}

/* Over TCP, to a Redis that asks for a password. */
Test(extension_tcp, with_password, .init = setup_redis_only, .fini = teardown,
     .timeout = 120)
{
	/* A quote and a backslash must survive LocalSettings.php. */
	const char *pw = "s3c'ret\\pw";
	redisReply *r = redisCommand(rc, "CONFIG SET requirepass %s", pw);
	cr_assert(r && r->type == REDIS_REPLY_STATUS, "CONFIG SET requirepass");
	freeReplyObject(r);
	r = redisCommand(rc, "AUTH %s", pw);
	cr_assert(r && r->type == REDIS_REPLY_STATUS, "AUTH");
	freeReplyObject(r);
	struct mw_opts o = { .freshet = true, .redis_host = "127.0.0.1",
			     .redis_port = redis->port,
			     .redis_password = pw, .partitions = PARTITIONS };
	mw = mw_start(&o);
	long pid, rid;
	mw_edit(mw, "Guarded", "text", &pid, &rid);
	wait_total(1);
	char *key = stream_key(pid, PARTITIONS);
	json_t *evs = stream_events(key);
	check_change(json_array_get(evs, 0), "create", "insert", pid, "Guarded", 0);
	cr_assert_eq(iget(json_array_get(evs, 0), "revision", "rev_id"), rid);
	json_decref(evs);
	free(key);
	/* Nothing was spooled. */
	cr_assert_null(test_read_file(mw_spool_path(mw), NULL));
}

/* A "Redis" that completes TCP handshakes (the kernel does, from the
 * listen backlog) and never answers: every command waits for its read
 * timeout. */
static int hang_fd = -1;
static char *scratch;

static void setup_hanging_redis(void)
{
	redis = test_redis_start();
	connect_redis();
	hang_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(hang_fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(hang_fd, 128), 0);
	scratch = test_mkdtemp("spooldir");
}

static void teardown_hanging_redis(void)
{
	teardown();
	close(hang_fd);
	test_rmtree(scratch);
	free(scratch);
}

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs a built program with args (NULL-terminated); returns its exit status. */
static int run_prog(const char *prog, const char *const *args)
{
	const char *b = getenv("FRESHET_BUILDDIR");
	char *path;
	cr_assert(asprintf(&path, "%s/%s", b && *b ? b : ".", prog) > 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		const char *argv[16] = { path };
		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		execv(path, (char **)argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	free(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

TestSuite(extension_hang, .init = setup_hanging_redis, .fini = teardown_hanging_redis,
	  .timeout = 120);

Test(extension_hang, saves_skip_a_hanging_redis_and_spool_privately)
{
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	getsockname(hang_fd, (struct sockaddr *)&a, &al);
	char *spool_dir;
	cr_assert(asprintf(&spool_dir, "%s/spool", scratch) > 0);
	cr_assert_eq(mkdir(spool_dir, 0700), 0);
	struct mw_opts o = { .freshet = true, .redis_host = "127.0.0.1",
			     .redis_port = ntohs(a.sin_port), .partitions = PARTITIONS,
			     .spool_dir = spool_dir, .redis_retry_after = 120 };
	mw = mw_start(&o);

	/* The first save may wait for Redis's read timeout... */
	long pid;
	cr_assert(mw_edit(mw, "Hang one", "first", &pid, NULL));
	/* ...the next ones, within the breaker's period, do not. */
	const char *titles[] = { "Hang two", "Hang three", "Hang four" };
	for (int i = 0; i < 3; i++) {
		int64_t t0 = ms_now();
		cr_assert(mw_edit(mw, titles[i], "text", NULL, NULL));
		int64_t took = ms_now() - t0;
		cr_expect_lt(took, 1000, "save of %s took %lld ms", titles[i], (long long)took);
	}
	/* A move (two events) neither. */
	int64_t t0 = ms_now();
	mw_move(mw, "Hang two", "Hang two moved", true);
	int64_t took = ms_now() - t0;
	cr_expect_lt(took, 1000, "the move took %lld ms", (long long)took);

	/* Every event is in the spool, in $wgFreshetSpoolDir, mode 0600. */
	const char *path = mw_spool_path(mw);
	cr_assert(strncmp(path, spool_dir, strlen(spool_dir)) == 0, "%s", path);
	char *text = NULL;
	size_t len = 0;
	for (int i = 0; i < 50; i++) {
		free(text);
		text = test_read_file(path, &len);
		if (text && count_lines(text) >= 6)
			break;
		usleep(100 * 1000);
	}
	cr_assert_not_null(text, "no spool file %s", path);
	cr_assert_geq(count_lines(text), 6, "spool: %s", text);
	cr_assert(strstr(text, "Hang_one") && strstr(text, "Hang_four") &&
		  strstr(text, "Hang_two_moved"), "spool: %s", text);
	free(text);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600, "spool mode %o", st.st_mode & 0777);
	char *state;
	cr_assert(asprintf(&state, "%s.retry-at", path) > 0);
	cr_assert_eq(stat(state, &st), 0, "no breaker state %s", state);
	cr_expect_eq(st.st_mode & 0777, 0600, "breaker state mode %o", st.st_mode & 0777);
	free(state);

	/* freshetctl replays it into the real Redis. */
	char *conf;
	cr_assert(asprintf(&conf, "%s/freshet.conf", scratch) > 0);
	FILE *f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[redis]\nurl = unix://%s\n\n[worker]\ndata_dir = %s/data\n\n"
		"[wiki testwiki]\napi = %s\nlanguage = en\nshards = %d\n",
		redis->socket, scratch, mw_api_url(mw), PARTITIONS);
	fclose(f);
	const char *args[] = { "--config", conf, "spool", "replay", path, NULL };
	cr_assert_eq(run_prog("freshetctl", args), 0);
	cr_expect_geq(count_all(), 6);
	char *key = stream_key(pid, PARTITIONS);
	json_t *evs = stream_events(key);
	bool found = false;
	for (size_t i = 0; i < json_array_size(evs); i++)
		if (iget(json_array_get(evs, i), "page", "page_id") == pid)
			found = true;
	cr_expect(found, "the first page's event is not on %s", key);
	json_decref(evs);
	free(key);
	free(conf);
	free(spool_dir);
}

Test(extension_hang, spool_never_grows_past_its_cap)
{
	char *spool_dir;
	cr_assert(asprintf(&spool_dir, "%s/spool", scratch) > 0);
	cr_assert_eq(mkdir(spool_dir, 0700), 0);
	/* Redis refuses at once (nothing listens on the port). */
	struct mw_opts o = { .freshet = true, .redis_host = "127.0.0.1",
			     .redis_port = test_free_port(), .partitions = PARTITIONS,
			     .spool_dir = spool_dir, .spool_max_bytes = 2500 };
	mw = mw_start(&o);
	for (int i = 0; i < 6; i++) {
		char title[32];
		snprintf(title, sizeof title, "Capped %d", i);
		cr_assert(mw_edit(mw, title, "text", NULL, NULL));
	}
	const char *path = mw_spool_path(mw);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "no spool %s", path);
	cr_expect_leq(st.st_size, 2500);
	cr_expect_gt(st.st_size, 0);
	char *text = test_read_file(path, NULL);
	size_t kept = count_lines(text);
	free(text);
	cr_expect_lt(kept, 6);
	/* What did not fit is counted, next to the spool. */
	char *dropped_path;
	cr_assert(asprintf(&dropped_path, "%s.dropped", path) > 0);
	char *dropped = test_read_file(dropped_path, NULL);
	cr_assert_not_null(dropped, "no %s", dropped_path);
	cr_expect_eq(strtol(dropped, NULL, 10), (long)(6 - kept), "dropped %s, kept %zu",
		     dropped, kept);
	free(dropped);
	free(dropped_path);
	free(spool_dir);
}
