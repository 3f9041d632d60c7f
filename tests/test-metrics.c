/* SPDX-License-Identifier: MIT */
/*
 * test-metrics.c: the Prometheus registry and its HTTP endpoint: what a
 * scraper sees.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "now.h"

/* GETs path from 127.0.0.1:port; returns the whole answer (caller frees). */
static char *http_get(int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	char req[256];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	cr_assert_eq(write(fd, req, (size_t)n), n);
	size_t cap = 65536, len = 0;
	char *out = malloc(cap);
	ssize_t r;
	while ((r = read(fd, out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(fd);
	return out;
}

Test(metrics, counters_gauges_and_histograms_render)
{
	struct metrics *m = metrics_new();
	static const double b[] = { 0.1, 1 };
	metrics_declare(m, "x_events_total", METRICS_COUNTER, "Events.", NULL, 0);
	metrics_declare(m, "x_seconds", METRICS_HISTOGRAM, "Latency.", b, 2);
	metrics_add(m, "x_events_total", "kind=\"edit\"", 1);
	metrics_add(m, "x_events_total", "kind=\"edit\"", 2);
	metrics_set(m, "x_lag", "p=\"0\"", 4.5);
	metrics_observe(m, "x_seconds", "wiki=\"w\"", 0.05);
	metrics_observe(m, "x_seconds", "wiki=\"w\"", 0.5);
	metrics_observe(m, "x_seconds", "wiki=\"w\"", 5);
	cr_assert_float_eq(metrics_get(m, "x_events_total", "kind=\"edit\""), 3, 1e-9);
	cr_assert_float_eq(metrics_get(m, "x_seconds", "wiki=\"w\""), 3, 1e-9);
	char *t = metrics_render(m);
	cr_assert(strstr(t, "# TYPE x_events_total counter\n"), "%s", t);
	cr_assert(strstr(t, "x_events_total{kind=\"edit\"} 3\n"), "%s", t);
	cr_assert(strstr(t, "x_lag{p=\"0\"} 4.5\n"), "%s", t);
	cr_assert(strstr(t, "x_seconds_bucket{wiki=\"w\",le=\"0.1\"} 1\n"), "%s", t);
	cr_assert(strstr(t, "x_seconds_bucket{wiki=\"w\",le=\"1\"} 2\n"), "%s", t);
	cr_assert(strstr(t, "x_seconds_bucket{wiki=\"w\",le=\"+Inf\"} 3\n"), "%s", t);
	cr_assert(strstr(t, "x_seconds_count{wiki=\"w\"} 3\n"), "%s", t);
	free(t);
	metrics_free(m);
}

Test(metrics, endpoint_serves_metrics_on_loopback)
{
	struct metrics *m = metrics_new();
	metrics_add(m, "y_total", NULL, 7);
	char err[256];
	cr_assert_eq(metrics_listen(m, NULL, 0, err, sizeof err), STATUS_OK, "%s", err);
	int port = metrics_port(m);
	cr_assert_gt(port, 0);
	char *r = http_get(port, "/metrics");
	cr_assert(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r);
	cr_assert(strstr(r, "text/plain; version=0.0.4"), "%s", r);
	cr_assert(strstr(r, "\r\n\r\ny_total 7\n"), "%s", r);
	free(r);
	r = http_get(port, "/other");
	cr_assert(strncmp(r, "HTTP/1.1 404", 12) == 0, "%s", r);
	free(r);
	/* A second server on the same registry is refused; a taken port too. */
	cr_assert_eq(metrics_listen(m, NULL, 0, err, sizeof err), STATUS_INVALID);
	struct metrics *m2 = metrics_new();
	cr_assert_eq(metrics_listen(m2, "127.0.0.1", port, err, sizeof err), STATUS_IO);
	cr_assert(strstr(err, "Address already in use"), "%s", err);
	metrics_free(m2);
	metrics_free(m);
}

/* Slow-loris clients: each socket sends its request one byte every 1.5 s,
 * from a thread of its own, until told to stop or the server hangs up. */
#define LORIS 6
struct loris {
	int port;
	int fd[LORIS];
	atomic_bool stop;
	atomic_int closed;  /* sockets the server closed */
	pthread_t thread;
};

static int connect_port(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

static void *loris_main(void *arg)
{
	struct loris *l = arg;
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
				  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	bool gone[LORIS] = { false };
	for (size_t i = 0; !atomic_load(&l->stop); i = (i + 1) % (sizeof req - 1)) {
		for (int k = 0; k < LORIS; k++) {
			if (gone[k])
				continue;
			char c;
			ssize_t r = recv(l->fd[k], &c, 1, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN) ||
			    send(l->fd[k], req + i, 1, MSG_NOSIGNAL) != 1) {
				gone[k] = true;
				atomic_fetch_add(&l->closed, 1);
			}
		}
		for (int t = 0; t < 15 && !atomic_load(&l->stop); t++)
			sleep_ms(100);
	}
	return NULL;
}

static void loris_start(struct loris *l, int port)
{
	l->port = port;
	atomic_init(&l->stop, false);
	atomic_init(&l->closed, 0);
	for (int k = 0; k < LORIS; k++)
		l->fd[k] = connect_port(port);
	cr_assert_eq(pthread_create(&l->thread, NULL, loris_main, l), 0);
}

static void loris_stop(struct loris *l)
{
	atomic_store(&l->stop, true);
	pthread_join(l->thread, NULL);
	for (int k = 0; k < LORIS; k++)
		close(l->fd[k]);
}

Test(metrics, slow_clients_neither_block_scrapes_nor_live_long, .timeout = 30)
{
	struct metrics *m = metrics_new();
	metrics_add(m, "z_total", NULL, 3);
	char err[256];
	cr_assert_eq(metrics_listen(m, NULL, 0, err, sizeof err), STATUS_OK, "%s", err);
	struct loris l;
	loris_start(&l, metrics_port(m));
	sleep_ms(500);
	/* Scrapes keep being answered at once while the slow clients trickle. */
	for (int i = 0; i < 4; i++) {
		int64_t t0 = now_ms();
		char *r = http_get(metrics_port(m), "/metrics");
		int64_t took = now_ms() - t0;
		cr_assert(strstr(r, "\r\n\r\nz_total 3\n"), "%s", r);
		cr_assert_lt(took, 1000, "scrape %d took %lld ms", i, (long long)took);
		free(r);
		sleep_ms(700);
	}
	/* And the slow clients are cut off, however steadily they send. */
	int64_t deadline = now_ms() + 12000;
	while (atomic_load(&l.closed) < LORIS && now_ms() < deadline)
		sleep_ms(100);
	cr_assert_eq(atomic_load(&l.closed), LORIS,
		     "only %d of %d slow clients were cut off", atomic_load(&l.closed), LORIS);
	loris_stop(&l);
	metrics_free(m);
}

Test(metrics, free_returns_at_once_with_slow_clients_connected, .timeout = 30)
{
	struct metrics *m = metrics_new();
	char err[256];
	cr_assert_eq(metrics_listen(m, NULL, 0, err, sizeof err), STATUS_OK, "%s", err);
	struct loris l;
	loris_start(&l, metrics_port(m));
	sleep_ms(2000);
	int64_t t0 = now_ms();
	metrics_free(m);
	int64_t took = now_ms() - t0;
	/* Far below freshet-worker's shutdown_timeout_ms. */
	cr_assert_lt(took, 1000, "metrics_free took %lld ms", (long long)took);
	loris_stop(&l);
}
