/* SPDX-License-Identifier: MIT */
/*
 * test-metrics.c: the Prometheus registry and its HTTP endpoint: what a
 * scraper sees.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"

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
	cr_assert(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", r);
	cr_assert(strstr(r, "text/plain; version=0.0.4"), "%s", r);
	cr_assert(strstr(r, "\r\n\r\ny_total 7\n"), "%s", r);
	free(r);
	r = http_get(port, "/other");
	cr_assert(strncmp(r, "HTTP/1.0 404", 12) == 0, "%s", r);
	free(r);
	/* A second server on the same registry is refused; a taken port too. */
	cr_assert_eq(metrics_listen(m, NULL, 0, err, sizeof err), STATUS_INVALID);
	struct metrics *m2 = metrics_new();
	cr_assert_eq(metrics_listen(m2, "127.0.0.1", port, err, sizeof err), STATUS_IO);
	cr_assert(strstr(err, "Address already in use"), "%s", err);
	metrics_free(m2);
	metrics_free(m);
}
