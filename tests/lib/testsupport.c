/* SPDX-License-Identifier: MIT */
/*
 * testsupport.c: throwaway redis-server instances (primaries, replicas and
 * sentinels) and scratch directories.
 *
 * A server is started with fork+exec and stopped by that pid, never by name,
 * so tests running in parallel cannot stop each other's servers.
 */
#include "testsupport.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_netns_join(const char *name)
{
	char path[300];
	snprintf(path, sizeof path, "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = setns(fd, CLONE_NEWNET);
	int err = errno;
	close(fd);
	errno = err;
	return rc;
}

pid_t test_spawn(const char *prog, const char *const *args, const char *logfile)
{
	return test_spawn_in(NULL, prog, args, logfile);
}

pid_t test_spawn_in(const char *netns, const char *prog, const char *const *args,
		    const char *logfile)
{
	const char *b = getenv("FRESHET_BUILDDIR");
	char *path;
	if (prog[0] == '/')
		path = strdup(prog);
	else if (asprintf(&path, "%s/%s", b && *b ? b : ".", prog) < 0)
		path = NULL;
	cr_assert_not_null(path, "out of memory");
	const char *argv[32];
	size_t n = 0;
	argv[n++] = path;
	for (size_t i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (netns && test_netns_join(netns) != 0) {
			fprintf(stderr, "cannot enter network namespace %s: %s\n", netns,
				strerror(errno));
			_exit(126);
		}
		execv(path, (char *const *)argv);
		_exit(127);
	}
	free(path);
	return pid;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * n;
}

void test_wait_http(const char *url, pid_t pid, const char *log)
{
	CURL *c = curl_easy_init();
	cr_assert_not_null(c, "curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	for (int i = 0; i < 600; i++) {
		if (curl_easy_perform(c) == CURLE_OK) {
			curl_easy_cleanup(c);
			return;
		}
		int ws;
		cr_assert_eq(waitpid(pid, &ws, WNOHANG), 0, "the server of %s exited; log in %s",
			     url, log);
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	curl_easy_cleanup(c);
	cr_assert_fail("nothing answered at %s; log in %s", url, log);
}

char *test_mkdtemp(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *templ;
	if (asprintf(&templ, "%s/freshet-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
		     tag) < 0)
		cr_assert_fail("out of memory");
	cr_assert_not_null(mkdtemp(templ), "mkdtemp %s: %s", templ, strerror(errno));
	return templ;
}

void test_rmtree(const char *path)
{
	if (!path || !*path || strcmp(path, "/") == 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
}

int test_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	socklen_t len = sizeof a;
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

char *test_srcpath(const char *rel)
{
	const char *src = getenv("FRESHET_SRCDIR");
	char *p;
	if (asprintf(&p, "%s/%s", src && *src ? src : ".", rel) < 0)
		cr_assert_fail("out of memory");
	return p;
}

char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *data = malloc(cap);
	size_t r;
	while ((r = fread(data + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0)
			data = realloc(data, cap *= 2);
	}
	fclose(f);
	data[n] = '\0';
	if (len)
		*len = n;
	return data;
}

bool test_dir_holds(const char *dir, const char *word)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			found = test_dir_holds(path, word);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		size_t len = 0;
		char *data = test_read_file(path, &len);
		found = data && memmem(data, len, word, strlen(word));
		free(data);
	}
	closedir(d);
	return found;
}

static bool redis_answers(struct test_redis *r)
{
	struct timeval tv = { 0, 200000 };
	redisContext *c = redisConnectUnixWithTimeout(r->socket, tv);
	bool ok = false;
	if (c && !c->err) {
		redisReply *rep = redisCommand(c, "PING");
		ok = rep && rep->type == REDIS_REPLY_STATUS;
		if (rep)
			freeReplyObject(rep);
	}
	if (c)
		redisFree(c);
	return ok;
}

/* Starts argv[0] (found on PATH) with its output to /dev/null; returns its
 * pid.  The child dies with the test process that started it, even when
 * that test crashes before stopping it, and it does not hold the test's
 * output streams open. */
static pid_t spawn_quiet(const char *netns, char *const argv[])
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (netns && test_netns_join(netns) != 0)
			_exit(126);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
			if (devnull > STDERR_FILENO)
				close(devnull);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void redis_spawn(struct test_redis *r)
{
	char port[16], primary[16], log[600];
	snprintf(port, sizeof port, "%d", r->port);
	snprintf(primary, sizeof primary, "%d", r->replica_of);
	snprintf(log, sizeof log, "%s/redis.log", r->dir);
	char *argv[] = { "redis-server", "--port", port,
		       "--bind", r->host, "--unixsocket", r->socket,
		       "--unixsocketperm", "700", "--dir", r->dir,
		       "--save", "", "--appendonly", "yes",
		       "--appendfsync", "always", "--logfile", log,
		       /* Other namespaces' hosts reach a server bound to
			* their network, which has no password. */
		       "--protected-mode", "no",
		       "--daemonize", "no",
		       r->replica_of ? "--replicaof" : NULL, r->primary_host, primary, NULL };
	pid_t pid = spawn_quiet(r->netns, argv);
	r->pid = pid;
	for (int i = 0; i < 500; i++) {
		if (redis_answers(r))
			return;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			cr_assert_fail("redis-server exited at start (is it installed? "
				       "scripts/setup installs it); log in %s", r->dir);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("redis-server did not answer within 5 s");
}

struct test_redis *test_redis_start_at(const char *netns, const char *host,
				       const struct test_redis *primary)
{
	struct test_redis *r = calloc(1, sizeof *r);
	r->dir = test_mkdtemp("redis");
	if (asprintf(&r->socket, "%s/redis.sock", r->dir) < 0)
		cr_assert_fail("out of memory");
	snprintf(r->host, sizeof r->host, "%s", host ? host : "127.0.0.1");
	r->netns = netns ? strdup(netns) : NULL;
	/* A fresh namespace has every port free; the caller's loopback is
	 * where a port is known to be free otherwise. */
	r->port = test_free_port();
	if (asprintf(&r->url, "redis://%s:%d/0", r->host, r->port) < 0)
		cr_assert_fail("out of memory");
	r->replica_of = primary ? primary->port : 0;
	snprintf(r->primary_host, sizeof r->primary_host, "%s",
		 primary ? primary->host : "");
	redis_spawn(r);
	return r;
}

struct test_redis *test_redis_start_replica(const struct test_redis *primary)
{
	return test_redis_start_at(NULL, NULL, primary);
}

struct test_redis *test_redis_start(void)
{
	return test_redis_start_replica(NULL);
}

void test_redis_kill9(struct test_redis *r)
{
	if (!r || r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	r->pid = 0;
}

/* Runs one command on a TCP server with short timeouts; NULL when it
 * does not answer. */
static redisReply *tcp_command(const char *host, int port, const char *cmd, const char *arg)
{
	struct timeval tv = { 0, 500000 };
	redisContext *c = redisConnectWithTimeout(host, port, tv);
	redisReply *rep = NULL;
	if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK)
		rep = arg ? redisCommand(c, cmd, arg) : redisCommand(c, cmd);
	if (c)
		redisFree(c);
	return rep;
}

/* Number of entries in the array reply of cmd (with arg), -1 on error. */
static long array_len(const char *host, int port, const char *cmd, const char *arg)
{
	redisReply *rep = tcp_command(host, port, cmd, arg);
	long n = rep && rep->type == REDIS_REPLY_ARRAY ? (long)rep->elements : -1;
	if (rep)
		freeReplyObject(rep);
	return n;
}

struct test_sentinels *test_sentinels_start(const struct test_redis *primary,
					    const char *name, int n)
{
	return test_sentinels_start_at(NULL, NULL, primary, name, n);
}

struct test_sentinels *test_sentinels_start_at(const char *netns, const char *host,
					       const struct test_redis *primary,
					       const char *name, int n)
{
	cr_assert(n >= 1 && n <= TEST_MAX_SENTINELS);
	struct test_sentinels *s = calloc(1, sizeof *s);
	s->n = n;
	snprintf(s->host, sizeof s->host, "%s", host ? host : "127.0.0.1");
	s->dir = test_mkdtemp("sentinel");
	s->name = strdup(name);
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		s->port[i] = test_free_port();
		char conf[600], log[600], port[16];
		snprintf(conf, sizeof conf, "%s/sentinel-%d.conf", s->dir, i);
		snprintf(log, sizeof log, "%s/sentinel-%d.log", s->dir, i);
		snprintf(port, sizeof port, "%d", s->port[i]);
		FILE *f = fopen(conf, "w");
		cr_assert_not_null(f);
		/* Short timers, so that a test sees a failover within seconds. */
		fprintf(f, "port %d\nbind %s\ndir %s\nlogfile %s\n"
			"sentinel monitor %s %s %d %d\n"
			"sentinel down-after-milliseconds %s 1000\n"
			"sentinel failover-timeout %s 4000\n"
			"sentinel parallel-syncs %s 1\n",
			s->port[i], s->host, s->dir, log, name, primary->host, primary->port,
			n / 2 + 1, name,
			name, name);
		fclose(f);
		char *argv[] = { "redis-server", conf, "--sentinel", NULL };
		s->pid[i] = spawn_quiet(netns, argv);
		off += (size_t)snprintf(s->list + off, sizeof s->list - off, "%s%s:%d",
					i ? "," : "", s->host, s->port[i]);
	}
	/* Ready when every sentinel knows the others and every replica the
	 * primary has: only then can they agree on a failover and pick one. */
	for (int t = 0; t < 300; t++) {
		redisReply *role = tcp_command(primary->host, primary->port, "ROLE", NULL);
		long replicas = role && role->type == REDIS_REPLY_ARRAY && role->elements == 3 &&
				role->element[2]->type == REDIS_REPLY_ARRAY
				? (long)role->element[2]->elements : 0;
		if (role)
			freeReplyObject(role);
		bool ready = true;
		for (int i = 0; i < n && ready; i++)
			ready = array_len(s->host, s->port[i], "SENTINEL sentinels %s", name) ==
					n - 1 &&
				array_len(s->host, s->port[i], "SENTINEL replicas %s", name) >=
					replicas;
		if (ready)
			return s;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("sentinels did not find each other within 30 s; logs in %s", s->dir);
	return NULL;
}

int test_sentinels_primary(const struct test_sentinels *s)
{
	for (int i = 0; i < s->n; i++) {
		redisReply *rep = tcp_command(s->host, s->port[i],
					      "SENTINEL get-master-addr-by-name %s", s->name);
		int port = 0;
		if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		    rep->element[1]->type == REDIS_REPLY_STRING)
			port = atoi(rep->element[1]->str);
		if (rep)
			freeReplyObject(rep);
		if (port)
			return port;
	}
	return 0;
}

void test_sentinels_stop(struct test_sentinels *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++) {
		if (s->pid[i] > 0) {
			kill(s->pid[i], SIGKILL);
			waitpid(s->pid[i], NULL, 0);
		}
	}
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(s->dir);
	free(s->dir);
	free(s->name);
	free(s);
}

void test_redis_pause(struct test_redis *r)
{
	if (!r || r->pid <= 0)
		return;
	kill(r->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		int st;
		if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
			r->pid = 0;
			return;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	r->pid = 0;
}

void test_redis_resume(struct test_redis *r)
{
	redis_spawn(r);
}

void test_redis_stop(struct test_redis *r)
{
	if (!r)
		return;
	test_redis_pause(r);
	test_rmtree(r->dir);
	free(r->dir);
	free(r->socket);
	free(r->url);
	free(r->netns);
	free(r);
}

json_t *test_event_json(const char *fixture, const char *wiki, long page_id,
			const char *title, long rev_id)
{
	char *rel, *path;
	cr_assert(asprintf(&rel, "tests/fixtures/events/%s.json", fixture) > 0);
	path = test_srcpath(rel);
	json_error_t err;
	json_t *ev = json_load_file(path, 0, &err);
	cr_assert_not_null(ev, "%s: %s", path, err.text);
	free(rel);
	free(path);

	json_object_set_new(ev, "wiki_id", json_string(wiki));
	/* page_change keeps the page in "page" and the revision in
	 * "revision"; page_rerender keeps the page's fields at the top. */
	json_t *page = json_object_get(ev, "page");
	if (!page)
		page = ev;
	json_object_set_new(page, "page_id", json_integer(page_id));
	if (title)
		json_object_set_new(page, "page_title", json_string(title));
	json_t *rev = json_object_get(ev, "revision");
	if (rev_id > 0) {
		cr_assert_not_null(rev, "fixture %s has no revision", fixture);
		json_object_set_new(rev, "rev_id", json_integer(rev_id));
	}
	return ev;
}

char *test_event(const char *fixture, const char *wiki, long page_id,
		 const char *title, long rev_id)
{
	json_t *ev = test_event_json(fixture, wiki, page_id, title, rev_id);
	char *s = json_dumps(ev, JSON_COMPACT);
	cr_assert_not_null(s);
	json_decref(ev);
	return s;
}

double test_metric_sum(int port, const char *prefix, const char *needle)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "curl -sf http://127.0.0.1:%d/metrics", port);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	double sum = 0;
	char line[1024];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, prefix, strlen(prefix)) != 0 ||
		    (needle && !strstr(line, needle)))
			continue;
		const char *sp = strrchr(line, ' ');
		if (sp)
			sum += strtod(sp + 1, NULL);
	}
	return pclose(f) == 0 ? sum : -1;
}

void test_stop_pid(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

/* The value of field name in a flat [name, value, ...] reply, or NULL. */
static const redisReply *reply_field(const redisReply *r, const char *name)
{
	for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2)
		if (r->element[k]->type == REDIS_REPLY_STRING && strcmp(r->element[k]->str, name) == 0)
			return r->element[k + 1];
	return NULL;
}

/* Compares two stream ids "ms-seq". */
static int id_cmp(const char *a, const char *b)
{
	unsigned long long am = 0, as = 0, bm = 0, bs = 0;
	sscanf(a, "%llu-%llu", &am, &as);
	sscanf(b, "%llu-%llu", &bm, &bs);
	return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

bool test_stream_drained(redisContext *c, const char *key, char *why, size_t len)
{
	why[0] = '\0';
	redisReply *s = redisCommand(c, "XINFO STREAM %s", key);
	redisReply *g = s && s->type == REDIS_REPLY_ARRAY ? redisCommand(c, "XINFO GROUPS %s", key)
							  : NULL;
	const redisReply *grp = NULL;
	for (size_t i = 0; g && g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
		const redisReply *name = reply_field(g->element[i], "name");
		if (name && name->type == REDIS_REPLY_STRING && strcmp(name->str, "freshet") == 0)
			grp = g->element[i];
	}
	const redisReply *last = reply_field(s, "last-generated-id"),
			 *delivered = reply_field(grp, "last-delivered-id"),
			 *pending = reply_field(grp, "pending");
	if (!s || (s->type == REDIS_REPLY_ERROR && !strstr(s->str, "no such key")))
		snprintf(why, len, "XINFO STREAM %s: %s", key, s ? s->str : "no answer");
	else if (s->type != REDIS_REPLY_ARRAY)
		; /* no stream: nothing to hand out */
	else if (!g || g->type != REDIS_REPLY_ARRAY)
		snprintf(why, len, "XINFO GROUPS %s: %s", key, g ? g->str : "no answer");
	else if (!grp) {
		const redisReply *n = reply_field(s, "length");
		if (n && n->type == REDIS_REPLY_INTEGER && n->integer > 0)
			snprintf(why, len, "%s: %lld entries, no group", key, n->integer);
	} else if (!last || !delivered || last->type != REDIS_REPLY_STRING ||
		   delivered->type != REDIS_REPLY_STRING)
		snprintf(why, len, "%s: no ids in XINFO", key);
	else if (id_cmp(delivered->str, last->str) < 0)
		snprintf(why, len, "%s: delivered up to %s of %s", key, delivered->str, last->str);
	else if (pending && pending->type == REDIS_REPLY_INTEGER && pending->integer != 0)
		snprintf(why, len, "%s: %lld pending", key, pending->integer);
	if (g)
		freeReplyObject(g);
	if (s)
		freeReplyObject(s);
	return why[0] == '\0';
}
