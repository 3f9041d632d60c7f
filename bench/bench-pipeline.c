/* SPDX-License-Identifier: MIT */
/*
 * bench-pipeline.c: freshet end to end, the real freshet-worker binary
 * against a real redis-server and a static copy of a wiki's Action API.
 *
 * Usage: bench-pipeline [-n PAGES] [-c CORPUS_DIR] [-w WORKER] [-s SHARDS]
 *                       [-b BACKLOG] [-l LATENCY_SECONDS] [-k] [-q]
 *                       [-W 'key = value']...
 *
 * -W adds a line to the worker's [worker] section (e.g. -W 'batch = 400'),
 * -q runs phases (a) to (c) only.
 *
 * CORPUS_DIR is what bench/make-pipeline-corpus.sh writes (parse/<id>.json,
 * info/<id>.json, html/<id>.html for ids 1..PAGES); without -c the bench
 * runs that script into its private directory first (PAGES pages, default
 * 20000).  WORKER defaults to ./freshet-worker (run from the build
 * directory); the analyzers come from $FRESHET_ANALYZER_DIR, else
 * ./analyzers/.libs.
 *
 * What it starts, each stopped by its pid at the end: redis-server on a free
 * loopback port (no persistence), Debian's nginx (single process, private
 * prefix and configuration, echo module) on a free loopback port serving
 *   /w/api.php?action=parse&pageid=N...      -> over/parse/N.json, else
 *                                               corpus/parse/N.json
 *   /w/api.php?action=query&prop=info&pageids=A%7CB...
 *                                            -> the entries over/info/X.json
 *                                               else corpus/info/X.json of
 *                                               each id, concatenated by the
 *                                               echo module into one answer
 * ("over" is the bench's overlay: pages it edits or deletes), and
 * freshet-worker (fork/exec, generated freshet.conf: wiki "benchwiki",
 * SHARDS shards, concurrency 16, no rate bound, defaults otherwise).
 *
 * Phases, in one run:
 *  (a) build: worker started on an empty data dir; PAGES create events
 *      (one per page) are XADDed; time from the first XADD until every
 *      entry is delivered and acknowledged (acks follow the commit that
 *      holds them).  Events/s = PAGES / that time.  Worker peak RSS =
 *      VmHWM of /proc/<pid>/status.  This is also the "rebuild from
 *      scratch" time of (c).
 *  (b) latency: the same worker; edits of random pages (new revid, a new
 *      paragraph) are XADDed at half the rate of (a) for LATENCY_SECONDS;
 *      each page's answer is rewritten before its event is added.  An
 *      event is searchable when it is acknowledged, because the worker acks
 *      only after the commit holding it (a reader reopening the shard sees
 *      it from then on).  The bench polls every 5 ms: per partition
 *      XINFO GROUPS (last-delivered-id) and XPENDING (the unacked ids); an
 *      entry is done when it is at or before last-delivered-id and not
 *      pending.  Latency = poll time - time just before its XADD, so it
 *      includes up to one poll interval.
 *  (c) update: 1% of the pages edited (new revid and text) and 1% deleted
 *      (the parse answer becomes {"error":{"code":"nosuchpageid"}}, the
 *      info entry "missing"), one event each, all XADDed at once; time
 *      until all acked, against the build time of (a).  The deletes
 *      only mark documents dead (shard.h); the bench then waits for the
 *      worker log to show them purged (action=purge, once the partitions
 *      idle for a second) and prints when and at what writer time.
 *  (d) omindex: Xapian's omindex over the same pages' HTML (html/<id>.html
 *      of ids 1..PAGES, through a directory of symbolic links), timed; its
 *      CPU time and peak RSS from wait4().
 *  (e) backlog: a second wiki id ("benchwiki_b", empty data dir): BACKLOG
 *      events (default 100000, cycling through the pages) are XADDed before
 *      the worker starts; peak RSS (VmHWM) once it has drained them.
 *
 * Figures are printed with their targets and PASS/MISS.  -k keeps the
 * private directory (/tmp/freshet-bench-pipeline-XXXXXX) for inspection.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WIKI "benchwiki"
#define WIKI_B "benchwiki_b"
#define MAXP 64

static char dir[] = "/tmp/freshet-bench-pipeline-XXXXXX";
static pid_t redis_pid, nginx_pid, worker_pid;
static redisContext *rc;
static int shards = 4;
static int npages = 20000;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stop_all(void);

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench-pipeline: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	stop_all();
	exit(1);
}

static void write_file(const char *path, const char *data, size_t len)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0 ||
	    rename(tmp, path) != 0)
		die("%s: %s", path, strerror(errno));
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		die("free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static pid_t spawn(char *const argv[], const char *out, char *const env_add[])
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		for (size_t i = 0; env_add && env_add[i]; i++)
			putenv(env_add[i]);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void wait_port(pid_t pid, int port, const char *what)
{
	for (int i = 0; i < 200 && !port_open(port); i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			die("%s exited at start (logs in %s)", what, dir);
		usleep(25000);
	}
	if (!port_open(port))
		die("%s did not listen on %d", what, port);
}

static void stop_pid(pid_t *pid, int sig)
{
	if (*pid <= 0)
		return;
	kill(*pid, sig);
	int st;
	for (int i = 0; i < 600; i++) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(50000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, &st, 0);
	*pid = 0;
}

static bool keep;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void stop_all(void)
{
	stop_pid(&worker_pid, SIGTERM);
	stop_pid(&nginx_pid, SIGQUIT);
	stop_pid(&redis_pid, SIGTERM);
	if (!keep && dir[strlen(dir) - 1] != 'X')
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ servers */

static void start_redis(int port)
{
	char p[16], d[4200], log[4200];
	snprintf(p, sizeof p, "%d", port);
	snprintf(d, sizeof d, "%s/redis", dir);
	mkdir(d, 0700);
	snprintf(log, sizeof log, "%s/redis.log", dir);
	char *argv[] = { "redis-server", "--port", p, "--bind", "127.0.0.1",
			 "--save", "", "--appendonly", "no", "--dir", d,
			 "--daemonize", "no", NULL };
	redis_pid = spawn(argv, log, NULL);
	wait_port(redis_pid, port, "redis-server");
	rc = redisConnect("127.0.0.1", port);
	if (!rc || rc->err)
		die("redis connect");
}

static void start_nginx(int port, const char *corpus)
{
	char conf[8192], path[4200];
	snprintf(path, sizeof path, "%s/corpus", dir);
	if (symlink(corpus, path) != 0)
		die("symlink: %s", strerror(errno));
	const char *sub[] = { "tmp", "over", "over/parse", "over/info" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, sub[i]);
		mkdir(path, 0755);
	}
	/* The echo module concatenates one info entry per page id: each
	 * entry file ends with a comma, the last element is a dummy page 0
	 * (fetch.c looks entries up by pageid). */
	snprintf(conf, sizeof conf,
		 "load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;\n"
		 "worker_processes 1;\ndaemon off;\nmaster_process off;\n"
		 "pid %s/nginx.pid;\nerror_log %s/nginx-error.log;\n"
		 "events { worker_connections 1024; }\n"
		 "http {\n"
		 "  access_log off;\n"
		 "  client_body_temp_path %s/tmp;\n  proxy_temp_path %s/tmp;\n"
		 "  fastcgi_temp_path %s/tmp;\n  uwsgi_temp_path %s/tmp;\n"
		 "  scgi_temp_path %s/tmp;\n"
		 "  default_type application/json;\n"
		 "  keepalive_requests 100000000;\n  keepalive_timeout 600s;\n"
		 "  server {\n"
		 "    listen 127.0.0.1:%d;\n    root %s;\n"
		 "    location = /w/api.php {\n"
		 "      if ($arg_action = \"query\") { rewrite ^ /info last; }\n"
		 "      rewrite ^ /p/$arg_pageid last;\n"
		 "    }\n"
		 "    location ~ ^/p/([0-9]+)$ { internal; try_files "
		 "/over/parse/$1.json /corpus/parse/$1.json =404; }\n"
		 "    location ~ ^/i/([0-9]+)$ { internal; try_files "
		 "/over/info/$1.json /corpus/info/$1.json =404; }\n"
		 "    location = /info {\n      internal;\n"
		 "      echo -n '{\"batchcomplete\":true,\"query\":{\"pages\":[';\n"
		 "      echo_foreach_split '%%7C' $arg_pageids;\n"
		 "        echo_location /i/$echo_it;\n      echo_end;\n"
		 "      echo -n '{\"pageid\":0,\"ns\":0,\"missing\":true}]}}';\n"
		 "    }\n  }\n}\n",
		 dir, dir, dir, dir, dir, dir, dir, port, dir);
	snprintf(path, sizeof path, "%s/nginx.conf", dir);
	write_file(path, conf, strlen(conf));
	char log[4200];
	snprintf(log, sizeof log, "%s/nginx.out", dir);
	char *argv[] = { "nginx", "-p", dir, "-c", path, NULL };
	nginx_pid = spawn(argv, log, NULL);
	wait_port(nginx_pid, port, "nginx");
}

static char worker_bin[4096] = "./freshet-worker";
static char worker_extra[1024];   /* -W lines appended to [worker] */
static bool quick;                /* -q: phases (a) to (c) only */
static int api_port, redis_port;

static void start_worker(const char *wiki, const char *tag)
{
	char conf[8192], path[4200], data[256], log[4200];
	snprintf(data, sizeof data, "%s/data-%s", dir, wiki);
	snprintf(conf, sizeof conf,
		 "[redis]\nurl = redis://127.0.0.1:%d/0\n\n"
		 "[worker]\ndata_dir = %s\n%s\n"
		 "[wiki %s]\napi = http://127.0.0.1:%d/w/api.php\n"
		 /* The stored answers hold no page listings: no
		  * consistency loop. */
		 "language = en\nshards = %d\nconcurrency = 16\nrate = 0\n"
		 "saneitize_days = 0\n",
		 redis_port, data, worker_extra, wiki, api_port, shards);
	snprintf(path, sizeof path, "%s/freshet-%s.conf", dir, wiki);
	write_file(path, conf, strlen(conf));
	snprintf(log, sizeof log, "%s/worker-%s.log", dir, tag);
	static char adir[4200], lvl[] = "FRESHET_LOG_LEVEL=debug";
	const char *ad = getenv("FRESHET_ANALYZER_DIR");
	snprintf(adir, sizeof adir, "FRESHET_ANALYZER_DIR=%s",
		 ad && *ad ? ad : "analyzers/.libs");
	char *env[] = { adir, lvl, NULL };
	char *argv[] = { worker_bin, "--config", path, NULL };
	worker_pid = spawn(argv, log, env);
}

/* ------------------------------------------------------------ redis */

static redisReply *cmd(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	if (!r)
		die("redis: %s", rc->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		die("redis: %s", r->str);
	return r;
}

struct sid { uint64_t ms, seq; };

static struct sid sid_parse(const char *s)
{
	struct sid x = { 0, 0 };
	char *end;
	x.ms = strtoull(s, &end, 10);
	if (*end == '-')
		x.seq = strtoull(end + 1, NULL, 10);
	return x;
}

static int sid_cmp(struct sid a, struct sid b)
{
	if (a.ms != b.ms)
		return a.ms < b.ms ? -1 : 1;
	return a.seq < b.seq ? -1 : a.seq > b.seq;
}

static void stream_key(char *buf, size_t len, const char *wiki, int p)
{
	snprintf(buf, len, "freshet:{%s:p%d}", wiki, p);
}

static char *event_json(const char *wiki, int64_t id, uint64_t rev, bool del)
{
	char *s = NULL;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char dt[40];
	strftime(dt, sizeof dt, "%Y-%m-%dT%H:%M:%SZ", &tm);
	char revpart[96] = "";
	if (!del)
		snprintf(revpart, sizeof revpart, ",\"revision\":{\"rev_id\":%" PRIu64
			 ",\"rev_dt\":\"%s\"}", rev, dt);
	if (asprintf(&s,
		     "{\"$schema\":\"/mediawiki/page/change/1.2.0\","
		     "\"meta\":{\"dt\":\"%s\",\"stream\":\"mediawiki.page_change\"},"
		     "\"dt\":\"%s\",\"wiki_id\":\"%s\",\"page_change_kind\":\"%s\","
		     "\"page\":{\"page_id\":%" PRId64 ",\"page_title\":\"Page_%" PRId64
		     "\",\"namespace_id\":0}%s}",
		     dt, dt, wiki, del ? "delete" : "edit", id, id, revpart) < 0)
		die("asprintf");
	return s;
}

/* Last id added per partition (what "drained" is compared with). */
static struct sid last_added[MAXP];

/* XADDs n events (pipelined); ids[i] gets the entry id when not NULL. */
static void produce(const char *wiki, const int64_t *pages, const uint64_t *revs,
		    const bool *dels, size_t n, struct sid *ids)
{
	for (size_t i = 0; i < n; i++) {
		char key[128];
		stream_key(key, sizeof key, wiki, (int)(pages[i] % shards));
		char *ev = event_json(wiki, pages[i], revs ? revs[i] : 0,
				      dels && dels[i]);
		redisAppendCommand(rc, "XADD %s * event %s", key, ev);
		free(ev);
		if ((i + 1) % 1000 == 0 || i + 1 == n) {
			size_t from = i + 1 - ((i % 1000) + 1);
			for (size_t k = from; k <= i; k++) {
				redisReply *r;
				if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r)
					die("redis: %s", rc->errstr);
				if (r->type != REDIS_REPLY_STRING)
					die("XADD: %s", r->type == REDIS_REPLY_ERROR ?
					    r->str : "unexpected reply");
				struct sid s = sid_parse(r->str);
				int p = (int)(pages[k] % shards);
				if (sid_cmp(s, last_added[p]) > 0)
					last_added[p] = s;
				if (ids)
					ids[k] = s;
				freeReplyObject(r);
			}
		}
	}
}

/* Group state of partition p: last delivered id; *pending entries. */
static struct sid group_state(const char *wiki, int p, long long *pending)
{
	char key[128];
	stream_key(key, sizeof key, wiki, p);
	redisReply *r = redisCommand(rc, "XINFO GROUPS %s", key);
	struct sid last = { 0, 0 };
	*pending = -1;
	if (!r)
		die("redis: %s", rc->errstr);
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t g = 0; g < r->elements; g++) {
			redisReply *e = r->element[g];
			bool ours = false;
			struct sid l = { 0, 0 };
			long long pend = 0;
			for (size_t k = 0; k + 1 < e->elements; k += 2) {
				const char *f = e->element[k]->str;
				redisReply *v = e->element[k + 1];
				if (!strcmp(f, "name") && v->str && !strcmp(v->str, "freshet"))
					ours = true;
				else if (!strcmp(f, "pending"))
					pend = v->integer;
				else if (!strcmp(f, "last-delivered-id") && v->str)
					l = sid_parse(v->str);
			}
			if (ours) {
				last = l;
				*pending = pend;
			}
		}
	}
	freeReplyObject(r);
	return last;
}

static bool drained(const char *wiki)
{
	for (int p = 0; p < shards; p++) {
		long long pend;
		struct sid l = group_state(wiki, p, &pend);
		if (pend != 0 || sid_cmp(l, last_added[p]) < 0)
			return false;
	}
	return true;
}

static bool worker_alive(void)
{
	int st;
	return worker_pid > 0 && waitpid(worker_pid, &st, WNOHANG) == 0;
}

/* Waits until every entry added to wiki's streams is acked; returns the
 * time it happened (polling every 20 ms). */
static double wait_drained(const char *wiki, double timeout_s)
{
	double t0 = now();
	while (now() - t0 < timeout_s) {
		if (drained(wiki))
			return now();
		if (!worker_alive()) {
			worker_pid = 0;
			die("freshet-worker exited (log in %s)", dir);
		}
		usleep(20000);
	}
	die("not drained after %.0f s (logs in %s)", timeout_s, dir);
	return 0;
}

/* Waits until the worker holds every lease of wiki (it is reading). */
static void wait_ready(const char *wiki)
{
	for (int i = 0; i < 1200; i++) {
		int have = 0;
		for (int p = 0; p < shards; p++) {
			redisReply *r = cmd("EXISTS freshet:{%s:p%d}:lease", wiki, p);
			have += r->integer == 1;
			freeReplyObject(r);
		}
		if (have == shards)
			return;
		if (!worker_alive()) {
			worker_pid = 0;
			die("freshet-worker exited at start (log in %s)", dir);
		}
		usleep(50000);
	}
	die("freshet-worker did not take its leases");
}

/* ------------------------------------------------------------ /proc */

static long vm_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	size_t fl = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			v = atol(line + fl + 1);
	if (f)
		fclose(f);
	return v;
}

/* utime + stime of pid, seconds. */
static double cpu_of(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long ut = 0, st = 0;
	/* fields after ")": state(3) ... utime(14) stime(15) */
	int field = 2;
	for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " ")) {
		field++;
		if (field == 14)
			ut = strtoul(t, NULL, 10);
		else if (field == 15) {
			st = strtoul(t, NULL, 10);
			break;
		}
	}
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ------------------------------------------------------------ pages */

static uint64_t *cur_rev;   /* [npages + 1] */
static bool *deleted;
static uint64_t next_rev = 1000000000ULL;

static json_t *load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		die("%s: %s", path, je.text);
	return j;
}

/* Gives page id a new revision: its parse answer gets the new revid and a
 * new paragraph, its info entry the new lastrevid.  Returns the revid. */
static uint64_t edit_page(const char *corpus, int64_t id)
{
	char path[4200];
	uint64_t rev = next_rev++;
	snprintf(path, sizeof path, "%s/parse/%" PRId64 ".json", corpus, id);
	json_t *doc = load_json(path);
	json_t *parse = json_object_get(doc, "parse");
	json_object_set_new(parse, "revid", json_integer((json_int_t)rev));
	const char *text = json_string_value(json_object_get(parse, "text"));
	char *nt = NULL;
	if (asprintf(&nt, "%s<p>Revision %" PRIu64 " adds this paragraph: the "
		     "options above were reviewed and the examples checked "
		     "against version %" PRIu64 ".</p>", text ? text : "", rev,
		     rev % 97) < 0)
		die("asprintf");
	json_object_set_new(parse, "text", json_string(nt));
	free(nt);
	char *s = json_dumps(doc, JSON_COMPACT);
	snprintf(path, sizeof path, "%s/over/parse/%" PRId64 ".json", dir, id);
	write_file(path, s, strlen(s));
	free(s);
	json_decref(doc);

	snprintf(path, sizeof path, "%s/info/%" PRId64 ".json", corpus, id);
	FILE *f = fopen(path, "r");
	char buf[8192];
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	while (n && (buf[n - 1] == ',' || buf[n - 1] == '\n'))
		n--;
	buf[n] = 0;
	json_t *info = json_loads(buf, 0, NULL);
	if (!info)
		die("%s: not JSON", path);
	json_object_set_new(info, "lastrevid", json_integer((json_int_t)rev));
	s = json_dumps(info, JSON_COMPACT);
	char *line = NULL;
	if (asprintf(&line, "%s,", s) < 0)
		die("asprintf");
	snprintf(path, sizeof path, "%s/over/info/%" PRId64 ".json", dir, id);
	write_file(path, line, strlen(line));
	free(line);
	free(s);
	json_decref(info);
	cur_rev[id] = rev;
	return rev;
}

static void delete_page(int64_t id)
{
	char path[4200], body[256];
	int n = snprintf(body, sizeof body,
			 "{\"error\":{\"code\":\"nosuchpageid\",\"info\":\"There is "
			 "no page with ID %" PRId64 ".\"}}", id);
	snprintf(path, sizeof path, "%s/over/parse/%" PRId64 ".json", dir, id);
	write_file(path, body, (size_t)n);
	n = snprintf(body, sizeof body, "{\"pageid\":%" PRId64 ",\"missing\":true},", id);
	snprintf(path, sizeof path, "%s/over/info/%" PRId64 ".json", dir, id);
	write_file(path, body, (size_t)n);
	deleted[id] = true;
}

/* ------------------------------------------------------------ phases */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct outstanding {
	int64_t page;
	int partition;
	struct sid id;
	double t;
};

/* Phase (b): events at `rate` per second for `secs`; latency XADD -> acked. */
static void latency(const char *corpus, double rate, double secs, double *p50,
		    double *p99, double *maxl, size_t *count)
{
	size_t cap = (size_t)(rate * secs) + 16;
	struct outstanding *out = calloc(cap, sizeof *out);
	double *lat = calloc(cap, sizeof *lat);
	bool *busy = calloc((size_t)npages + 1, sizeof *busy);
	size_t n_out = 0, n_lat = 0, produced = 0;
	double t0 = now(), last_poll = 0;
	while (true) {
		double t = now();
		bool producing = t - t0 < secs;
		while (producing && produced < (size_t)((t - t0) * rate) + 1 &&
		       produced < cap) {
			int64_t page;
			do
				page = (int64_t)(rnd() % (uint64_t)npages) + 1;
			while (busy[page]);
			uint64_t rev = edit_page(corpus, page);
			double ts = now();
			struct sid id;
			produce(WIKI, &page, &rev, NULL, 1, &id);
			busy[page] = true;
			out[n_out++] = (struct outstanding){ page, (int)(page % shards),
							    id, ts };
			produced++;
		}
		if (!producing && n_out == 0)
			break;
		if (t - t0 > secs + 60)
			die("latency: %zu events not acked 60 s after the last", n_out);
		if (t - last_poll >= 0.005 && n_out) {
			last_poll = t;
			struct sid lastd[MAXP];
			char key[128];
			for (int p = 0; p < shards; p++) {
				long long pend;
				lastd[p] = group_state(WIKI, p, &pend);
			}
			/* Pending ids of each partition. */
			redisReply *pr[MAXP];
			for (int p = 0; p < shards; p++) {
				stream_key(key, sizeof key, WIKI, p);
				pr[p] = cmd("XPENDING %s freshet - + 10000", key);
			}
			double tp = now();
			size_t keepn = 0;
			for (size_t i = 0; i < n_out; i++) {
				struct outstanding *o = &out[i];
				bool done = sid_cmp(o->id, lastd[o->partition]) <= 0;
				for (size_t k = 0; done && k < pr[o->partition]->elements; k++) {
					redisReply *e = pr[o->partition]->element[k];
					if (e->elements && e->element[0]->str &&
					    sid_cmp(sid_parse(e->element[0]->str), o->id) == 0)
						done = false;
				}
				if (done) {
					lat[n_lat++] = tp - o->t;
					busy[o->page] = false;
				} else {
					out[keepn++] = *o;
				}
			}
			n_out = keepn;
			for (int p = 0; p < shards; p++)
				freeReplyObject(pr[p]);
			if (!worker_alive()) {
				worker_pid = 0;
				die("freshet-worker exited during the latency phase");
			}
		}
		usleep(1000);
	}
	qsort(lat, n_lat, sizeof *lat, cmp_double);
	*count = n_lat;
	*p50 = n_lat ? lat[n_lat / 2] : 0;
	*p99 = n_lat ? lat[(size_t)((double)(n_lat - 1) * 0.99)] : 0;
	*maxl = n_lat ? lat[n_lat - 1] : 0;
	free(out);
	free(lat);
	free(busy);
}

/* Phase (d): omindex over html/; returns seconds, sets *rss_kib and *cpu
 * (its user + system seconds). */
static double run_omindex(const char *corpus, long *rss_kib, double *cpu)
{
	char db[4200], html[4200], log[4200], src[8400], dst[8400];
	snprintf(db, sizeof db, "%s/omega", dir);
	snprintf(log, sizeof log, "%s/omindex.log", dir);
	/* The corpus may hold more pages than this run uses: omindex reads a
	 * directory of symbolic links to pages 1..npages (--follow). */
	snprintf(html, sizeof html, "%s/omindex-html", dir);
	mkdir(html, 0755);
	for (int i = 1; i <= npages; i++) {
		snprintf(src, sizeof src, "%s/html/%d.html", corpus, i);
		snprintf(dst, sizeof dst, "%s/%d.html", html, i);
		if (symlink(src, dst) != 0)
			die("%s: %s", dst, strerror(errno));
	}
	char *argv[] = { "omindex", "--follow", "--db", db, "--url", "/", html,
			 NULL };
	double t0 = now();
	pid_t pid = spawn(argv, log, NULL);
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		die("omindex failed (see %s)", log);
	*rss_kib = ru.ru_maxrss;
	*cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return now() - t0;
}

/* Sums the duration_ms= of the worker log's lines with action=<action>
 * (commit, purge): returns seconds of writer time, sets *lines to how many
 * lines and *docs (if not NULL) to the sum of their docs=. */
static double log_seconds(const char *tag, const char *action, int *lines,
			  long *docs)
{
	char path[4200], line[1024], key[64];
	snprintf(path, sizeof path, "%s/worker-%s.log", dir, tag);
	snprintf(key, sizeof key, "action=%s ", action);
	FILE *f = fopen(path, "r");
	double ms = 0;
	*lines = 0;
	if (docs)
		*docs = 0;
	while (f && fgets(line, sizeof line, f)) {
		if (!strstr(line, key))
			continue;
		char *d = strstr(line, " docs="), *t = strstr(line, "duration_ms=");
		if (t) {
			ms += atof(t + 12);
			(*lines)++;
			if (docs && d)
				*docs += atol(d + 6);
		}
	}
	if (f)
		fclose(f);
	return ms / 1000;
}

static const char *verdict(bool ok)
{
	return ok ? "PASS" : "MISS";
}

static void usage(void)
{
	fputs("Usage: bench-pipeline [-n PAGES] [-c CORPUS_DIR] [-w WORKER] "
	      "[-s SHARDS]\n                      [-b BACKLOG] [-l LATENCY_SECONDS] [-k] "
	      "[-q] [-W 'key = value']...\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *corpus = NULL;
	long backlog = 100000;
	double lat_secs = 20;
	int c;
	while ((c = getopt(argc, argv, "n:c:w:s:b:l:kW:q")) != -1) {
		switch (c) {
		case 'n': npages = atoi(optarg); break;
		case 'c': corpus = optarg; break;
		case 'w': snprintf(worker_bin, sizeof worker_bin, "%s", optarg); break;
		case 's': shards = atoi(optarg); break;
		case 'b': backlog = atol(optarg); break;
		case 'l': lat_secs = atof(optarg); break;
		case 'k': keep = true; break;
		case 'q': quick = true; break;
		case 'W':
			if (strlen(worker_extra) + strlen(optarg) + 2 > sizeof worker_extra)
				usage();
			strcat(worker_extra, optarg);
			strcat(worker_extra, "\n");
			break;
		default: usage();
		}
	}
	if (npages < 100 || shards < 1 || shards > MAXP || backlog < 0)
		usage();
	if (access(worker_bin, X_OK) != 0)
		die("%s: not executable (run from the build directory or use -w)",
		    worker_bin);
	if (worker_bin[0] != '/') {
		char cwd[2048], abs[8192];
		if (!getcwd(cwd, sizeof cwd))
			die("getcwd");
		snprintf(abs, sizeof abs, "%s/%s", cwd, worker_bin);
		if (strlen(abs) >= sizeof worker_bin)
			die("worker path too long");
		memcpy(worker_bin, abs, strlen(abs) + 1);
	}
	if (!getenv("FRESHET_ANALYZER_DIR")) {
		char cwd[2048], ad[4200];
		if (getcwd(cwd, sizeof cwd)) {
			snprintf(ad, sizeof ad, "%s/analyzers/.libs", cwd);
			setenv("FRESHET_ANALYZER_DIR", ad, 1);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	char corpus_buf[4200];
	if (!corpus) {
		snprintf(corpus_buf, sizeof corpus_buf, "%s/gen-corpus", dir);
		const char *src = getenv("srcdir");
		char script[4200];
		snprintf(script, sizeof script, "%s/bench/make-pipeline-corpus.sh",
			 src ? src : "..");
		char n[32];
		snprintf(n, sizeof n, "%d", npages);
		printf("bench-pipeline: generating %d pages with %s\n", npages, script);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			execlp("sh", "sh", script, corpus_buf, n, (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			die("corpus generation failed");
		corpus = corpus_buf;
	}
	char path[8400];
	snprintf(path, sizeof path, "%s/parse/%d.json", corpus, npages);
	if (access(path, R_OK) != 0)
		die("%s: missing (corpus smaller than %d pages?)", path, npages);
	char abs_corpus[4096];
	if (!realpath(corpus, abs_corpus))
		die("%s: %s", corpus, strerror(errno));
	corpus = abs_corpus;
	cur_rev = calloc((size_t)npages + 1, sizeof *cur_rev);
	deleted = calloc((size_t)npages + 1, sizeof *deleted);
	for (int i = 1; i <= npages; i++)
		cur_rev[i] = (uint64_t)i * 10;

	redis_port = free_port();
	start_redis(redis_port);
	api_port = free_port();
	start_nginx(api_port, corpus);
	printf("bench-pipeline: %d pages from %s, %d shards; redis-server pid %d "
	       "port %d, nginx pid %d port %d; private dir %s\n", npages, corpus,
	       shards, (int)redis_pid, redis_port, (int)nginx_pid, api_port, dir);
	fflush(stdout);

	/* ---- (a) build from scratch, events/s end to end */
	int64_t *pages = malloc(sizeof(int64_t) * (size_t)(backlog > npages ? backlog : npages));
	uint64_t *revs = malloc(sizeof(uint64_t) * (size_t)(backlog > npages ? backlog : npages));
	bool *dels = calloc((size_t)(backlog > npages ? backlog : npages), sizeof *dels);
	for (int i = 0; i < npages; i++) {
		pages[i] = i + 1;
		revs[i] = cur_rev[i + 1];
	}
	start_worker(WIKI, "a");
	wait_ready(WIKI);
	double cpu0 = cpu_of(worker_pid), rcpu0 = cpu_of(redis_pid),
	       ncpu0 = cpu_of(nginx_pid);
	double t0 = now();
	produce(WIKI, pages, revs, NULL, (size_t)npages, NULL);
	double t_enq = now() - t0;
	double t1 = wait_drained(WIKI, 3600);
	double build_s = t1 - t0;
	double eps = npages / build_s;
	double wcpu = cpu_of(worker_pid) - cpu0;
	double rcpu = cpu_of(redis_pid) - rcpu0, ncpu = cpu_of(nginx_pid) - ncpu0;
	long hwm_a = vm_kib(worker_pid, "VmHWM");
	printf("(a) build: %d events enqueued in %.2f s, all committed and acked "
	       "%.1f s after the first XADD: %.0f events/s; worker CPU %.1f s "
	       "(%.0f pages per worker CPU second), nginx CPU %.1f s, redis CPU "
	       "%.1f s; worker peak RSS %.1f MiB\n",
	       npages, t_enq, build_s, eps, wcpu, npages / wcpu, ncpu, rcpu,
	       hwm_a / 1024.0);
	fflush(stdout);

	/* ---- (b) latency at half the rate */
	double p50, p99, maxl;
	size_t nlat;
	latency(corpus, eps / 2, lat_secs, &p50, &p99, &maxl, &nlat);
	printf("(b) latency XADD -> acked (= committed, searchable) at %.0f "
	       "events/s for %.0f s: %zu events, p50 %.3f s, p99 %.3f s, max "
	       "%.3f s\n", eps / 2, lat_secs, nlat, p50, p99, maxl);
	fflush(stdout);

	/* ---- (c) 1% changed + 1% deleted */
	size_t nch = (size_t)npages / 100, n = 0;
	bool *picked = calloc((size_t)npages + 1, sizeof *picked);
	while (n < 2 * nch) {
		int64_t page = (int64_t)(rnd() % (uint64_t)npages) + 1;
		if (picked[page])
			continue;
		picked[page] = true;
		pages[n] = page;
		dels[n] = n >= nch;
		revs[n] = dels[n] ? 0 : edit_page(corpus, page);
		if (dels[n])
			delete_page(page);
		n++;
	}
	double t2 = now();
	produce(WIKI, pages, revs, dels, n, NULL);
	double t3 = wait_drained(WIKI, 3600);
	double upd_s = t3 - t2;
	printf("(c) update: %zu pages edited + %zu deleted applied in %.2f s, "
	       "against %.1f s for the build from scratch (1/%.0f)\n",
	       nch, nch, upd_s, build_s, build_s / upd_s);
	fflush(stdout);
	/* The deletes only marked the documents dead; the writers purge them
	 * once their partitions idle.  Report that deferred cost too. */
	long purged = 0;
	int npurge;
	double purge_s;
	for (;;) {
		purge_s = log_seconds("a", "purge", &npurge, &purged);
		if (purged >= (long)nch || now() - t3 >= 60)
			break;
		usleep(50 * 1000);
	}
	double t_purged = now();
	printf("(c) purge: the idle writers deleted %ld of the %zu dead documents "
	       "for real by %.2f s after the update was acked, in %.2f s of "
	       "writer time (in parallel over %d shards)\n", purged, nch,
	       t_purged - t3, purge_s, shards);
	fflush(stdout);
	long hwm_ac = vm_kib(worker_pid, "VmHWM");
	stop_pid(&worker_pid, SIGTERM);
	int ncommit;
	double commit_s = log_seconds("a", "commit", &ncommit, NULL);

	if (quick) {
		printf("bench-pipeline: -q: (a) %.0f events/s, (b) p99 %.3f s, (c) "
		       "%.1f%% of the rebuild\n", eps, p99, 100 * upd_s / build_s);
		redisFree(rc);
		stop_all();
		return 0;
	}

	/* ---- (d) omindex on the same HTML */
	long om_rss;
	double om_cpu;
	double om_s = run_omindex(corpus, &om_rss, &om_cpu);
	double om_pps = npages / om_s;
	printf("(d) omindex: %d pages of HTML in %.1f s: %.0f pages/s; CPU %.1f s "
	       "(%.0f pages per CPU second); peak RSS %.1f MiB\n", npages, om_s,
	       om_pps, om_cpu, npages / om_cpu, om_rss / 1024.0);
	fflush(stdout);

	/* ---- (e) backlog */
	for (long i = 0; i < backlog; i++) {
		int64_t page = (i % npages) + 1;
		pages[i] = page;
		/* The page's current revision (the deleted ones are deletes). */
		dels[i] = deleted[page];
		revs[i] = cur_rev[page];
	}
	redisReply *r = cmd("SET freshet:{%s}:partitions %d", WIKI_B, shards);
	freeReplyObject(r);
	memset(last_added, 0, sizeof last_added);
	double t4 = now();
	produce(WIKI_B, pages, revs, dels, (size_t)backlog, NULL);
	double t_enq_b = now() - t4;
	double t5 = now();
	start_worker(WIKI_B, "e");
	double t6 = wait_drained(WIKI_B, 3600);
	long hwm_e = vm_kib(worker_pid, "VmHWM");
	double wcpu_e = cpu_of(worker_pid);
	printf("(e) backlog: %ld events for %d pages enqueued in %.1f s before "
	       "the worker started; drained %.1f s after its start (%.0f events/s, "
	       "worker CPU %.1f s); worker peak RSS %.1f MiB\n", backlog, npages,
	       t_enq_b, t6 - t5, backlog / (t6 - t5), wcpu_e, hwm_e / 1024.0);
	stop_pid(&worker_pid, SIGTERM);

	printf("\nbench-pipeline: where the build's time went: %d commits took "
	       "%.1f s of writer time in all (the writers of %d shards run in "
	       "parallel) of %.1f s\n", ncommit, commit_s, shards, build_s);
	printf("\nbench-pipeline summary (%d pages, %d shards)\n", npages, shards);
	printf("  end to end           %7.0f events/s   target >= 2 x omindex "
	       "(%.0f pages/s) = %.0f   %s\n", eps, om_pps, 2 * om_pps,
	       verdict(eps >= 2 * om_pps));
	printf("  worker peak RSS (a-c) %6.1f MiB       (no target; build %.1f MiB)\n",
	       hwm_ac / 1024.0, hwm_a / 1024.0);
	printf("  latency p50          %7.3f s          (no target)\n", p50);
	printf("  latency p99          %7.3f s          target < 1.5 s   %s\n", p99,
	       verdict(p99 < 1.5));
	printf("  1%% update            %7.2f s          target <= 2%% of rebuild "
	       "(%.1f s) = %.2f s   %s (%.1f%%)\n", upd_s, build_s, build_s * 0.02,
	       verdict(upd_s <= build_s * 0.02), 100 * upd_s / build_s);
	printf("  omindex              %7.0f pages/s    peak RSS %.1f MiB\n", om_pps,
	       om_rss / 1024.0);
	printf("  per CPU second       worker %.0f pages, omindex %.0f pages "
	       "(the figure the machine's load does not move)\n", npages / wcpu,
	       npages / om_cpu);
	printf("  peak RSS, %ld backlog %6.1f MiB       target < 200 MiB   %s\n",
	       backlog, hwm_e / 1024.0, verdict(hwm_e < 200 * 1024));
	fflush(stdout);
	redisFree(rc);
	stop_all();
	if (keep)
		printf("bench-pipeline: kept %s\n", dir);
	free(pages);
	free(revs);
	free(dels);
	free(picked);
	free(cur_rev);
	free(deleted);
	return 0;
}
