/* SPDX-License-Identifier: MIT */
/*
 * bench-queue.c: events per second through the queue, against a
 * redis-server this program starts on loopback and stops by its pid.
 *
 *   produce            stream_produce(), one XADD round trip per event
 *   consume+ack/B      stream_read() (decode included) + stream_ack(), with
 *                      batches of B = 1, 100, 1000 entries
 *   ceiling            `redis-benchmark -t xadd` against the same server in
 *                      the same run (50 clients, no pipelining)
 *
 * Usage: bench-queue [-n EVENTS]  (default 100000; batch 1 uses n/5)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "now.h"
#include "redis.h"
#include "stream.h"

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		perror("bench-queue: free port");
		exit(1);
	}
	close(fd);
	return ntohs(a.sin_port);
}

static pid_t start_redis(int port, const char *dir)
{
	pid_t pid = fork();
	if (pid == 0) {
		char p[16];
		snprintf(p, sizeof p, "%d", port);
		int devnull = open("/dev/null", 1);
		dup2(devnull, 1);
		execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1",
		       "--save", "", "--appendonly", "no", "--dir", dir, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench-queue: %s: %s\n", what, msg);
	exit(1);
}

static struct redis *conn(const char *url)
{
	struct redis_opts o = { .url = url, .read_timeout_ms = 10000 };
	char err[256];
	struct redis *r = redis_new(&o, err, sizeof err);
	if (!r)
		die("redis", err);
	return r;
}

/* Loads n events into the wiki's single partition with pipelined XADDs. */
static void preload(struct redis *r, const char *wiki, const char *json, int n)
{
	for (int done = 0; done < n;) {
		int chunk = n - done < 1000 ? n - done : 1000;
		for (int i = 0; i < chunk; i++)
			redis_append(r, "XADD freshet:{%s:p0} * event %s", wiki, json);
		for (int i = 0; i < chunk; i++) {
			enum status st;
			redisReply *rep = redis_get_reply(r, &st);
			if (!rep)
				die("preload", redis_errmsg(r));
			freeReplyObject(rep);
		}
		done += chunk;
	}
}

static double consume(const char *url, const char *wiki, int batch, const char *json, int n)
{
	struct redis *rd = conn(url), *ctl = conn(url);
	struct stream_opts o = { .wiki = wiki, .partitions = 1, .batch = batch, .block_ms = 1000,
	                         .consumer = "bench" };
	char err[256];
	struct stream *s = stream_new(rd, ctl, &o, err, sizeof err);
	if (!s)
		die("stream_new", err);
	if (stream_setup(s) != STATUS_OK)
		die("setup", stream_errmsg(s));
	preload(ctl, wiki, json, n);
	stream_assign(s, 0, true);
	int got = 0;
	double t0 = now_s();
	while (got < n) {
		struct stream_batch *b = NULL;
		if (stream_read(s, &b) != STATUS_OK)
			die("read", stream_errmsg(s));
		if (b->n == 0)
			die("read", "ran dry before the end");
		if (stream_ack(s, b) != STATUS_OK)
			die("ack", stream_errmsg(s));
		got += (int)b->n;
		stream_batch_free(b);
	}
	double rate = got / (now_s() - t0);
	stream_free(s);
	redis_free(rd);
	redis_free(ctl);
	return rate;
}

int main(int argc, char **argv)
{
	int n = 100000;
	int opt;
	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			n = atoi(optarg);
		else {
			fprintf(stderr, "usage: bench-queue [-n EVENTS]\n");
			return 2;
		}
	}
	char dir[] = "/tmp/bench-queue.XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	int port = free_port();
	pid_t pid = start_redis(port, dir);
	char url[64];
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
	struct redis *ctl = conn(url);
	for (int i = 0;; i++) {
		enum status st;
		redisReply *rep = redis_command(ctl, &st, "PING");
		if (rep) {
			freeReplyObject(rep);
			break;
		}
		if (i > 200)
			die("redis-server", "did not answer PING");
		usleep(25 * 1000);
	}

	struct event ev = { .kind = EVENT_EDIT, .wiki = "bench", .page_id = 12345,
	                    .title = "Some_fairly_typical_page_title", .namespace_id = 0,
	                    .rev_id = 987654321, .time_ms = 1700000000000 };
	char *json = event_encode(&ev);
	printf("bench-queue: %d events of %zu bytes, redis-server on 127.0.0.1:%d\n", n,
	       strlen(json), port);

	/* The ceiling: redis-benchmark's XADD rate on this server, with a
	 * payload of the same size.  redis-benchmark 7.0 has no built-in
	 * "xadd" test (`-t xadd` runs nothing), so the command is given
	 * explicitly. */
	size_t plen = strlen(json);
	char *filler = malloc(plen + 1);
	memset(filler, 'x', plen);
	filler[plen] = '\0';
	char *cmd;
	if (asprintf(&cmd, "redis-benchmark -h 127.0.0.1 -p %d -n %d -q XADD ceiling '*' "
	             "event %s 2>/dev/null | tr '\\r' '\\n'", port, n * 2, filler) < 0)
		die("asprintf", "out of memory");
	free(filler);
	double ceiling = 0;
	FILE *f = popen(cmd, "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		char *p = strstr(line, "requests per second");
		char *colon = p ? strstr(line, ": ") : NULL;
		while (colon && strstr(colon + 2, ": ") && strstr(colon + 2, ": ") < p)
			colon = strstr(colon + 2, ": ");
		if (colon && colon < p)
			ceiling = atof(colon + 2);
	}
	if (f)
		pclose(f);
	free(cmd);
	printf("%-28s %10.0f events/s\n", "redis-benchmark XADD", ceiling);

	struct redis *prd = NULL;
	struct stream_opts po = { .wiki = "bench", .partitions = 1 };
	struct stream *ps = stream_new(prd, ctl, &po, NULL, 0);
	if (stream_setup(ps) != STATUS_OK)
		die("setup", stream_errmsg(ps));
	double t0 = now_s();
	for (int i = 0; i < n; i++)
		if (stream_produce(ps, 12345, json, strlen(json), NULL) != STATUS_OK)
			die("produce", stream_errmsg(ps));
	printf("%-28s %10.0f events/s\n", "produce (1 XADD per event)", n / (now_s() - t0));
	stream_free(ps);

	int batches[] = { 1, 100, 1000 };
	double at100 = 0;
	for (size_t i = 0; i < sizeof batches / sizeof *batches; i++) {
		char wiki[32], label[64];
		snprintf(wiki, sizeof wiki, "bench%d", batches[i]);
		int count = batches[i] == 1 ? n / 5 : n;
		double rate = consume(url, wiki, batches[i], json, count);
		if (batches[i] == 100)
			at100 = rate;
		snprintf(label, sizeof label, "consume+ack batch %d", batches[i]);
		printf("%-28s %10.0f events/s\n", label, rate);
	}
	if (ceiling > 0)
		printf("consume+ack at batch 100 = %.2f x the XADD ceiling (target >= 0.5)\n",
		       at100 / ceiling);

	free(json);
	redis_free(ctl);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	char rm[128];
	snprintf(rm, sizeof rm, "rm -rf %s", dir);
	if (system(rm) != 0)
		fprintf(stderr, "bench-queue: could not remove %s\n", dir);
	return 0;
}
