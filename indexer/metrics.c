/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: a mutex-guarded registry of Prometheus series and a one-thread
 * HTTP/1.0 server for them.
 *
 * Invariants: series are only ever added, never removed, so a rendering
 * sees each series once; a series' type is its metric's declared type (an
 * undeclared name is an untyped gauge).  The server thread polls its
 * listening socket with a timeout so that metrics_free() can stop it
 * without signals.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "buf.h"
#include "xmalloc.h"

struct family {
	char *name;
	char *help;
	enum metrics_type type;
	double *buckets;
	int n_buckets;
};

struct series {
	int family;          /* index into families, -1 when undeclared */
	char *name;
	char *labels;
	double value;        /* counter/gauge value; histogram sum */
	unsigned long long count;
	unsigned long long *bucket_counts; /* histograms: per bucket (non-cumulative) */
};

struct metrics {
	pthread_mutex_t mu;
	struct family *families;
	size_t n_families;
	struct series *series;
	size_t n_series;

	int listen_fd;
	int port;
	pthread_t thread;
	bool running;
	atomic_bool stop;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof *m);
	pthread_mutex_init(&m->mu, NULL);
	m->listen_fd = -1;
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->running) {
		atomic_store(&m->stop, true);
		pthread_join(m->thread, NULL);
	}
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	for (size_t i = 0; i < m->n_families; i++) {
		free(m->families[i].name);
		free(m->families[i].help);
		free(m->families[i].buckets);
	}
	free(m->families);
	for (size_t i = 0; i < m->n_series; i++) {
		free(m->series[i].name);
		free(m->series[i].labels);
		free(m->series[i].bucket_counts);
	}
	free(m->series);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static int find_family(struct metrics *m, const char *name)
{
	for (size_t i = 0; i < m->n_families; i++)
		if (strcmp(m->families[i].name, name) == 0)
			return (int)i;
	return -1;
}

void metrics_declare(struct metrics *m, const char *name, enum metrics_type t,
		     const char *help, const double *buckets, int n)
{
	pthread_mutex_lock(&m->mu);
	if (find_family(m, name) < 0) {
		m->families = xrealloc(m->families, (m->n_families + 1) *
						     sizeof *m->families);
		struct family *f = &m->families[m->n_families++];
		f->name = xstrdup(name);
		f->help = xstrdup(help ? help : "");
		f->type = t;
		f->n_buckets = t == METRICS_HISTOGRAM ? n : 0;
		f->buckets = NULL;
		if (f->n_buckets > 0) {
			f->buckets = xmalloc((size_t)n * sizeof *f->buckets);
			memcpy(f->buckets, buckets, (size_t)n * sizeof *f->buckets);
		}
	}
	pthread_mutex_unlock(&m->mu);
}

/* Returns the series name{labels}, creating it; the mutex is held. */
static struct series *get_series(struct metrics *m, const char *name,
				 const char *labels)
{
	if (!labels)
		labels = "";
	for (size_t i = 0; i < m->n_series; i++)
		if (strcmp(m->series[i].name, name) == 0 &&
		    strcmp(m->series[i].labels, labels) == 0)
			return &m->series[i];
	m->series = xrealloc(m->series, (m->n_series + 1) * sizeof *m->series);
	struct series *s = &m->series[m->n_series++];
	memset(s, 0, sizeof *s);
	s->family = find_family(m, name);
	s->name = xstrdup(name);
	s->labels = xstrdup(labels);
	if (s->family >= 0 && m->families[s->family].n_buckets > 0)
		s->bucket_counts = xcalloc((size_t)m->families[s->family].n_buckets,
					   sizeof *s->bucket_counts);
	return s;
}

void metrics_add(struct metrics *m, const char *name, const char *labels,
		 double v)
{
	pthread_mutex_lock(&m->mu);
	get_series(m, name, labels)->value += v;
	pthread_mutex_unlock(&m->mu);
}

void metrics_set(struct metrics *m, const char *name, const char *labels,
		 double v)
{
	pthread_mutex_lock(&m->mu);
	get_series(m, name, labels)->value = v;
	pthread_mutex_unlock(&m->mu);
}

void metrics_observe(struct metrics *m, const char *name, const char *labels,
		     double v)
{
	pthread_mutex_lock(&m->mu);
	struct series *s = get_series(m, name, labels);
	s->value += v;
	s->count++;
	if (s->family >= 0) {
		const struct family *f = &m->families[s->family];
		for (int i = 0; i < f->n_buckets; i++)
			if (v <= f->buckets[i]) {
				s->bucket_counts[i]++;
				break;
			}
	}
	pthread_mutex_unlock(&m->mu);
}

double metrics_get(struct metrics *m, const char *name, const char *labels)
{
	double v = 0;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_series; i++)
		if (strcmp(m->series[i].name, name) == 0 &&
		    strcmp(m->series[i].labels, labels ? labels : "") == 0) {
			const struct series *s = &m->series[i];
			bool hist = s->family >= 0 &&
				    m->families[s->family].type == METRICS_HISTOGRAM;
			v = hist ? (double)s->count : s->value;
		}
	pthread_mutex_unlock(&m->mu);
	return v;
}

static void add_labels(struct buf *b, const char *labels, const char *extra)
{
	bool any = *labels || extra;
	if (!any)
		return;
	buf_addch(b, '{');
	buf_adds(b, labels);
	if (extra) {
		if (*labels)
			buf_addch(b, ',');
		buf_adds(b, extra);
	}
	buf_addch(b, '}');
}

char *metrics_render(struct metrics *m)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	struct buf b = BUF_INIT;
	pthread_mutex_lock(&m->mu);
	for (size_t f = 0; f <= m->n_families; f++) {
		/* f == n_families collects the undeclared names. */
		const struct family *fam = f < m->n_families ? &m->families[f] : NULL;
		bool header = false;
		for (size_t i = 0; i < m->n_series; i++) {
			const struct series *s = &m->series[i];
			if (fam ? s->family != (int)f : s->family >= 0)
				continue;
			if (fam && !header) {
				buf_addf(&b, "# HELP %s %s\n# TYPE %s %s\n", fam->name,
					 fam->help, fam->name, type_names[fam->type]);
				header = true;
			}
			if (fam && fam->type == METRICS_HISTOGRAM) {
				unsigned long long cum = 0;
				char le[64];
				for (int k = 0; k < fam->n_buckets; k++) {
					cum += s->bucket_counts[k];
					buf_addf(&b, "%s_bucket", s->name);
					snprintf(le, sizeof le, "le=\"%g\"", fam->buckets[k]);
					add_labels(&b, s->labels, le);
					buf_addf(&b, " %llu\n", cum);
				}
				buf_addf(&b, "%s_bucket", s->name);
				add_labels(&b, s->labels, "le=\"+Inf\"");
				buf_addf(&b, " %llu\n", s->count);
				buf_addf(&b, "%s_sum", s->name);
				add_labels(&b, s->labels, NULL);
				buf_addf(&b, " %.6f\n", s->value);
				buf_addf(&b, "%s_count", s->name);
				add_labels(&b, s->labels, NULL);
				buf_addf(&b, " %llu\n", s->count);
			} else {
				buf_adds(&b, s->name);
				add_labels(&b, s->labels, NULL);
				buf_addf(&b, " %.17g\n", s->value);
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	return buf_detach(&b, NULL);
}

/* Answers one connection. */
static void serve_one(struct metrics *m, int fd)
{
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	char req[2048];
	size_t n = 0;
	while (n < sizeof req - 1) {
		ssize_t r = read(fd, req + n, sizeof req - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[n] = '\0';
	struct buf out = BUF_INIT;
	if (strncmp(req, "GET /metrics ", 13) == 0 ||
	    strncmp(req, "GET /metrics?", 13) == 0) {
		char *body = metrics_render(m);
		buf_addf(&out, "HTTP/1.0 200 OK\r\n"
			 "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 strlen(body), body);
		free(body);
	} else {
		buf_adds(&out, "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
			 "Content-Length: 20\r\nConnection: close\r\n\r\ntry GET /metrics\r\n\r\n");
	}
	size_t off = 0;
	while (off < out.len) {
		ssize_t w = write(fd, out.data + off, out.len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	buf_release(&out);
}

static void *server_main(void *arg)
{
	struct metrics *m = arg;
	while (!atomic_load(&m->stop)) {
		struct pollfd p = { m->listen_fd, POLLIN, 0 };
		int r = poll(&p, 1, 200);
		if (r <= 0)
			continue;
		int fd = accept(m->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		serve_one(m, fd);
		close(fd);
	}
	return NULL;
}

enum status metrics_listen(struct metrics *m, const char *host, int port,
			   char *errbuf, size_t errlen)
{
	if (m->running) {
		snprintf(errbuf, errlen, "metrics server already running");
		return STATUS_INVALID;
	}
	if (!host)
		host = "127.0.0.1";
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(errbuf, errlen, "metrics_listen %s:%d: %s", host, port,
			 gai_strerror(rc));
		return STATUS_IO;
	}
	int fd = -1, err = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(errbuf, errlen, "metrics_listen %s:%d: %s", host, port,
			 strerror(err));
		return STATUS_IO;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	m->port = ntohs(ss.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&ss)->sin6_port
				: ((struct sockaddr_in *)&ss)->sin_port);
	m->listen_fd = fd;
	atomic_store(&m->stop, false);
	if (pthread_create(&m->thread, NULL, server_main, m) != 0) {
		snprintf(errbuf, errlen, "metrics_listen: cannot start a thread");
		close(fd);
		m->listen_fd = -1;
		m->port = 0;
		return STATUS_IO;
	}
	m->running = true;
	return STATUS_OK;
}

int metrics_port(const struct metrics *m)
{
	return m->port;
}
