/* SPDX-License-Identifier: MIT */
/*
 * harness.c: the servers, events and page edits the end-to-end benchmarks
 * share (harness.h).  Every process it starts is recorded by pid and
 * stopped by harness_stop_all(), which harness_die() calls on the way out.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

char harness_dir[256];
pid_t harness_redis_pid, harness_nginx_pid, harness_worker_pid;
redisContext *harness_rc;
int harness_shards = 4;
int harness_npages = 20000;
bool harness_keep;
void (*harness_at_stop)(void);
static char prog_name[64] = "bench";

double harness_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void harness_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	harness_stop_all();
	exit(1);
}

void harness_write_file(const char *path, const char *data, size_t len)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0 ||
	    rename(tmp, path) != 0)
		harness_die("%s: %s", path, strerror(errno));
}

int harness_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		harness_die("free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

bool harness_port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/* harness_spawn(), as pw's user when pw is not NULL (then in the private
 * directory, out of root's home), in a process group of its own when
 * own_group. */
static pid_t spawn_as(char *const argv[], const char *out, char *const env_add[],
		      const struct passwd *pw, bool own_group)
{
	pid_t pid = fork();
	if (pid < 0)
		harness_die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (own_group)
			setpgid(0, 0);
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			if (pw && fchown(fd, pw->pw_uid, pw->pw_gid) != 0)
				_exit(126);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (pw && (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 ||
			   chdir(harness_dir) != 0))
			_exit(126);
		for (size_t i = 0; env_add && env_add[i]; i++)
			putenv(env_add[i]);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

pid_t harness_spawn(char *const argv[], const char *out, char *const env_add[])
{
	return spawn_as(argv, out, env_add, NULL, false);
}

pid_t harness_spawn_group(char *const argv[], const char *out, char *const env_add[])
{
	return spawn_as(argv, out, env_add, NULL, true);
}

pid_t harness_spawn_user(char *const argv[], const char *out, const char *user)
{
	const struct passwd *pw = NULL;
	if (getuid() == 0) {
		pw = getpwnam(user);
		if (!pw)
			harness_die("running as root, and there is no user %s", user);
		/* The private directory is root's: let the user in. */
		if (chmod(harness_dir, 0711) != 0)
			harness_die("chmod %s: %s", harness_dir, strerror(errno));
	}
	return spawn_as(argv, out, NULL, pw, false);
}

void harness_wait_port(pid_t pid, int port, const char *what)
{
	for (int i = 0; i < 200 && !harness_port_open(port); i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			harness_die("%s exited at start (logs in %s)", what, harness_dir);
		usleep(25000);
	}
	if (!harness_port_open(port))
		harness_die("%s did not listen on %d", what, port);
}

void harness_stop_pid(pid_t *pid, int sig)
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

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void harness_stop_all(void)
{
	if (harness_at_stop)
		harness_at_stop();
	harness_stop_pid(&harness_worker_pid, SIGTERM);
	harness_stop_pid(&harness_nginx_pid, SIGQUIT);
	harness_stop_pid(&harness_redis_pid, SIGTERM);
	if (!harness_keep && harness_dir[0])
		nftw(harness_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void harness_program(char *path, size_t size, char opt)
{
	if (access(path, X_OK) != 0)
		harness_die("%s: not executable (run from the build directory or use "
			    "-%c)", path, opt);
	if (path[0] != '/') {
		char cwd[2048], abs[8192];
		if (!getcwd(cwd, sizeof cwd))
			harness_die("getcwd");
		snprintf(abs, sizeof abs, "%s/%s", cwd, path);
		if (strlen(abs) >= size)
			harness_die("%s: path too long", abs);
		memcpy(path, abs, strlen(abs) + 1);
	}
}

const char *harness_verdict(bool ok)
{
	return ok ? "PASS" : "MISS";
}

void harness_init(const char *prog)
{
	snprintf(prog_name, sizeof prog_name, "%s", prog);
	harness_program(harness_worker_bin, sizeof harness_worker_bin, 'w');
	if (!getenv("FRESHET_ANALYZER_DIR")) {
		char cwd[2048], ad[4200];
		if (getcwd(cwd, sizeof cwd)) {
			snprintf(ad, sizeof ad, "%s/analyzers/.libs", cwd);
			setenv("FRESHET_ANALYZER_DIR", ad, 1);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	char tmpl[sizeof harness_dir];
	snprintf(tmpl, sizeof tmpl, "/tmp/freshet-%.64s-XXXXXX", prog);
	if (!mkdtemp(tmpl))
		harness_die("mkdtemp: %s", strerror(errno));
	memcpy(harness_dir, tmpl, strlen(tmpl) + 1);
}

const char *harness_corpus(const char *corpus)
{
	static char abs_corpus[4096];
	char corpus_buf[4200];
	if (!corpus) {
		snprintf(corpus_buf, sizeof corpus_buf, "%s/gen-corpus", harness_dir);
		const char *src = getenv("srcdir");
		char script[4200];
		snprintf(script, sizeof script, "%s/bench/make-pipeline-corpus.sh",
			 src ? src : "..");
		char n[32];
		snprintf(n, sizeof n, "%d", harness_npages);
		printf("%s: generating %d pages with %s\n", prog_name, harness_npages,
		       script);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			execlp("sh", "sh", script, corpus_buf, n, (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			harness_die("corpus generation failed");
		corpus = corpus_buf;
	}
	char path[8400];
	snprintf(path, sizeof path, "%s/parse/%d.json", corpus, harness_npages);
	if (access(path, R_OK) != 0)
		harness_die("%s: missing (corpus smaller than %d pages?)", path,
			    harness_npages);
	if (!realpath(corpus, abs_corpus))
		harness_die("%s: %s", corpus, strerror(errno));
	harness_cur_rev = calloc((size_t)harness_npages + 1, sizeof *harness_cur_rev);
	harness_deleted = calloc((size_t)harness_npages + 1, sizeof *harness_deleted);
	if (!harness_cur_rev || !harness_deleted)
		harness_die("out of memory");
	for (int i = 1; i <= harness_npages; i++)
		harness_cur_rev[i] = (uint64_t)i * 10;
	return abs_corpus;
}

/* ------------------------------------------------------------ servers */

void harness_start_redis(int port)
{
	char p[16], d[4200], log[4200];
	snprintf(p, sizeof p, "%d", port);
	snprintf(d, sizeof d, "%s/redis", harness_dir);
	mkdir(d, 0700);
	snprintf(log, sizeof log, "%s/redis.log", harness_dir);
	char *argv[] = { "redis-server", "--port", p, "--bind", "127.0.0.1",
			 "--save", "", "--appendonly", "no", "--dir", d,
			 "--daemonize", "no", NULL };
	harness_redis_pid = harness_spawn(argv, log, NULL);
	harness_wait_port(harness_redis_pid, port, "redis-server");
	harness_rc = redisConnect("127.0.0.1", port);
	if (!harness_rc || harness_rc->err)
		harness_die("redis connect");
}

void harness_start_nginx(int port, const char *corpus)
{
	char conf[8192], path[4200];
	snprintf(path, sizeof path, "%s/corpus", harness_dir);
	if (symlink(corpus, path) != 0)
		harness_die("symlink: %s", strerror(errno));
	const char *sub[] = { "tmp", "over", "over/parse", "over/info" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", harness_dir, sub[i]);
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
		 harness_dir, harness_dir, harness_dir, harness_dir, harness_dir, harness_dir, harness_dir, port, harness_dir);
	snprintf(path, sizeof path, "%s/nginx.conf", harness_dir);
	harness_write_file(path, conf, strlen(conf));
	char log[4200];
	snprintf(log, sizeof log, "%s/nginx.out", harness_dir);
	char *argv[] = { "nginx", "-p", harness_dir, "-c", path, NULL };
	harness_nginx_pid = harness_spawn(argv, log, NULL);
	harness_wait_port(harness_nginx_pid, port, "nginx");
}

void harness_start_stage(const char *corpus)
{
	harness_redis_port = harness_free_port();
	harness_start_redis(harness_redis_port);
	harness_api_port = harness_free_port();
	harness_start_nginx(harness_api_port, corpus);
}

char harness_worker_bin[4096] = "./freshet-worker";
char harness_worker_extra[1024];
int harness_api_port, harness_redis_port;

void harness_worker_conf(const char *path, const char *data_dir, const char *wiki,
			 const char *worker_extra, const char *sections)
{
	char conf[8192];
	int n = snprintf(conf, sizeof conf,
			 "[redis]\nurl = redis://127.0.0.1:%d/0\n\n"
			 "[worker]\ndata_dir = %s\n%s\n"
			 "[wiki %s]\napi = http://127.0.0.1:%d/w/api.php\n"
			 /* The stored answers hold no page listings: no
			  * consistency loop. */
			 "language = en\nshards = %d\nconcurrency = 16\nrate = 0\n"
			 "saneitize_days = 0\n%s",
			 harness_redis_port, data_dir, worker_extra, wiki, harness_api_port,
			 harness_shards, sections ? sections : "");
	if (n < 0 || (size_t)n >= sizeof conf)
		harness_die("%s: configuration too long", path);
	harness_write_file(path, conf, (size_t)n);
}

pid_t harness_run_worker(const char *conf, const char *tag, bool own_group)
{
	char log[4200];
	snprintf(log, sizeof log, "%s/worker-%s.log", harness_dir, tag);
	static char adir[4200], lvl[] = "FRESHET_LOG_LEVEL=debug";
	const char *ad = getenv("FRESHET_ANALYZER_DIR");
	snprintf(adir, sizeof adir, "FRESHET_ANALYZER_DIR=%s",
		 ad && *ad ? ad : "analyzers/.libs");
	char *env[] = { adir, lvl, NULL };
	char *argv[] = { harness_worker_bin, "--config", (char *)conf, NULL };
	return spawn_as(argv, log, env, NULL, own_group);
}

void harness_start_worker(const char *wiki, const char *tag)
{
	char path[4200], data[512];
	snprintf(data, sizeof data, "%s/data-%s", harness_dir, wiki);
	snprintf(path, sizeof path, "%s/freshet-%s.conf", harness_dir, wiki);
	harness_worker_conf(path, data, wiki, harness_worker_extra, NULL);
	harness_worker_pid = harness_run_worker(path, tag, false);
}

/* ------------------------------------------------------------ redis */

redisReply *harness_cmd(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(harness_rc, fmt, ap);
	va_end(ap);
	if (!r)
		harness_die("redis: %s", harness_rc->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		harness_die("redis: %s", r->str);
	return r;
}


struct harness_sid harness_sid_parse(const char *s)
{
	struct harness_sid x = { 0, 0 };
	char *end;
	x.ms = strtoull(s, &end, 10);
	if (*end == '-')
		x.seq = strtoull(end + 1, NULL, 10);
	return x;
}

int harness_sid_cmp(struct harness_sid a, struct harness_sid b)
{
	if (a.ms != b.ms)
		return a.ms < b.ms ? -1 : 1;
	return a.seq < b.seq ? -1 : a.seq > b.seq;
}

void harness_stream_key(char *buf, size_t len, const char *wiki, int p)
{
	snprintf(buf, len, "freshet:{%s:p%d}", wiki, p);
}

static char *harness_event_json(const char *wiki, int64_t id, uint64_t rev, bool del)
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
		harness_die("asprintf");
	return s;
}

/* Last id added per partition (what "drained" is compared with). */
struct harness_sid harness_last_added[MAXP];

/* XADDs n events (pipelined); ids[i] gets the entry id when not NULL. */
void harness_produce(const char *wiki, const int64_t *pages, const uint64_t *revs,
		    const bool *dels, size_t n, struct harness_sid *ids)
{
	for (size_t i = 0; i < n; i++) {
		char key[128];
		harness_stream_key(key, sizeof key, wiki, (int)(pages[i] % harness_shards));
		char *ev = harness_event_json(wiki, pages[i], revs ? revs[i] : 0,
				      dels && dels[i]);
		redisAppendCommand(harness_rc, "XADD %s * event %s", key, ev);
		free(ev);
		if ((i + 1) % 1000 == 0 || i + 1 == n) {
			size_t from = i + 1 - ((i % 1000) + 1);
			for (size_t k = from; k <= i; k++) {
				redisReply *r;
				if (redisGetReply(harness_rc, (void **)&r) != REDIS_OK || !r)
					harness_die("redis: %s", harness_rc->errstr);
				if (r->type != REDIS_REPLY_STRING)
					harness_die("XADD: %s", r->type == REDIS_REPLY_ERROR ?
					    r->str : "unexpected reply");
				struct harness_sid s = harness_sid_parse(r->str);
				int p = (int)(pages[k] % harness_shards);
				if (harness_sid_cmp(s, harness_last_added[p]) > 0)
					harness_last_added[p] = s;
				if (ids)
					ids[k] = s;
				freeReplyObject(r);
			}
		}
	}
}

/* Group state of partition p: last delivered id; *pending entries. */
struct harness_sid harness_group_state(const char *wiki, int p, long long *pending)
{
	char key[128];
	harness_stream_key(key, sizeof key, wiki, p);
	redisReply *r = redisCommand(harness_rc, "XINFO GROUPS %s", key);
	struct harness_sid last = { 0, 0 };
	*pending = -1;
	if (!r)
		harness_die("redis: %s", harness_rc->errstr);
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t g = 0; g < r->elements; g++) {
			redisReply *e = r->element[g];
			bool ours = false;
			struct harness_sid l = { 0, 0 };
			long long pend = 0;
			for (size_t k = 0; k + 1 < e->elements; k += 2) {
				const char *f = e->element[k]->str;
				redisReply *v = e->element[k + 1];
				if (!strcmp(f, "name") && v->str && !strcmp(v->str, "freshet"))
					ours = true;
				else if (!strcmp(f, "pending"))
					pend = v->integer;
				else if (!strcmp(f, "last-delivered-id") && v->str)
					l = harness_sid_parse(v->str);
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

bool harness_drained(const char *wiki)
{
	for (int p = 0; p < harness_shards; p++) {
		long long pend;
		struct harness_sid l = harness_group_state(wiki, p, &pend);
		if (pend != 0 || harness_sid_cmp(l, harness_last_added[p]) < 0)
			return false;
	}
	return true;
}

bool harness_worker_alive(void)
{
	int st;
	return harness_worker_pid > 0 && waitpid(harness_worker_pid, &st, WNOHANG) == 0;
}

/* Waits until every entry added to wiki's streams is acked; returns the
 * time it happened (polling every 20 ms). */
double harness_wait_drained(const char *wiki, double timeout_s)
{
	double t0 = harness_now();
	while (harness_now() - t0 < timeout_s) {
		if (harness_drained(wiki))
			return harness_now();
		if (!harness_worker_alive()) {
			harness_worker_pid = 0;
			harness_die("freshet-worker exited (log in %s)", harness_dir);
		}
		usleep(20000);
	}
	harness_die("not drained after %.0f s (logs in %s)", timeout_s, harness_dir);
	return 0;
}

/* Waits until the worker holds every lease of wiki (it is reading). */
void harness_wait_ready(const char *wiki)
{
	for (int i = 0; i < 1200; i++) {
		int have = 0;
		for (int p = 0; p < harness_shards; p++) {
			redisReply *r = harness_cmd("EXISTS freshet:{%s:p%d}:lease", wiki, p);
			have += r->integer == 1;
			freeReplyObject(r);
		}
		if (have == harness_shards)
			return;
		if (!harness_worker_alive()) {
			harness_worker_pid = 0;
			harness_die("freshet-worker exited at start (log in %s)", harness_dir);
		}
		usleep(50000);
	}
	harness_die("freshet-worker did not take its leases");
}

/* ------------------------------------------------------------ /proc */

long harness_vm_kib(pid_t pid, const char *field)
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
double harness_cpu_of(pid_t pid)
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

uint64_t *harness_cur_rev;   /* [npages + 1] */
bool *harness_deleted;
static uint64_t next_rev = 1000000000ULL;

json_t *harness_load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		harness_die("%s: %s", path, je.text);
	return j;
}

/* Gives page id a new revision: its parse answer gets the new revid and a
 * new paragraph, its info entry the new lastrevid.  Returns the revid. */
uint64_t harness_edit_page(const char *corpus, int64_t id)
{
	char path[4200];
	uint64_t rev = next_rev++;
	snprintf(path, sizeof path, "%s/parse/%" PRId64 ".json", corpus, id);
	json_t *doc = harness_load_json(path);
	json_t *parse = json_object_get(doc, "parse");
	json_object_set_new(parse, "revid", json_integer((json_int_t)rev));
	const char *text = json_string_value(json_object_get(parse, "text"));
	char *nt = NULL;
	if (asprintf(&nt, "%s<p>Revision %" PRIu64 " adds this paragraph: the "
		     "options above were reviewed and the examples checked "
		     "against version %" PRIu64 ".</p>", text ? text : "", rev,
		     rev % 97) < 0)
		harness_die("asprintf");
	json_object_set_new(parse, "text", json_string(nt));
	free(nt);
	char *s = json_dumps(doc, JSON_COMPACT);
	snprintf(path, sizeof path, "%s/over/parse/%" PRId64 ".json", harness_dir, id);
	harness_write_file(path, s, strlen(s));
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
		harness_die("%s: not JSON", path);
	json_object_set_new(info, "lastrevid", json_integer((json_int_t)rev));
	s = json_dumps(info, JSON_COMPACT);
	char *line = NULL;
	if (asprintf(&line, "%s,", s) < 0)
		harness_die("asprintf");
	snprintf(path, sizeof path, "%s/over/info/%" PRId64 ".json", harness_dir, id);
	harness_write_file(path, line, strlen(line));
	free(line);
	free(s);
	json_decref(info);
	harness_cur_rev[id] = rev;
	return rev;
}

void harness_delete_page(int64_t id)
{
	char path[4200], body[256];
	int n = snprintf(body, sizeof body,
			 "{\"error\":{\"code\":\"nosuchpageid\",\"info\":\"There is "
			 "no page with ID %" PRId64 ".\"}}", id);
	snprintf(path, sizeof path, "%s/over/parse/%" PRId64 ".json", harness_dir, id);
	harness_write_file(path, body, (size_t)n);
	n = snprintf(body, sizeof body, "{\"pageid\":%" PRId64 ",\"missing\":true},", id);
	snprintf(path, sizeof path, "%s/over/info/%" PRId64 ".json", harness_dir, id);
	harness_write_file(path, body, (size_t)n);
	harness_deleted[id] = true;
}


int harness_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
uint64_t harness_rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
