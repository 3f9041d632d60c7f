/* SPDX-License-Identifier: MIT */
/*
 * hostile.c: the misbehaving HTTP server of hostile.h.
 *
 * One accept thread; one thread per connection (keep-alive: a connection
 * serves requests until the client closes it).  All threads poll with short
 * timeouts and watch h->stop, so hostile_stop() can join them all.
 * SIGPIPE is avoided with MSG_NOSIGNAL: a client that hangs up mid-body
 * (the fetcher at its byte cap) just ends that connection.
 */
#include "hostile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdint.h>
#include <zlib.h>

#define MAX_CONNS 512

struct hostile {
	int fd;
	int port;
	atomic_bool stop;
	atomic_long requests;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_t conns[MAX_CONNS];
	int n_conns;
	unsigned char *bomb; /* gzip of 1 GiB of spaces */
	size_t bomb_len;
};

struct conn {
	struct hostile *h;
	int fd;
};

static bool send_all(struct hostile *h, int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		if (h->stop)
			return false;
		struct pollfd pfd = { fd, POLLOUT, 0 };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return false;
		}
		s += w;
		n -= (size_t)w;
	}
	return true;
}

static bool send_str(struct hostile *h, int fd, const char *s)
{
	return send_all(h, fd, s, strlen(s));
}

static bool send_response(struct hostile *h, int fd, int code,
			  const char *extra_headers, const char *ctype,
			  const char *body)
{
	char head[1024];
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
		 code, ctype, strlen(body), extra_headers ? extra_headers : "");
	return send_str(h, fd, head) && send_str(h, fd, body);
}

/* Sleeps ms milliseconds unless stopping; returns false when stopping. */
static bool nap(struct hostile *h, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		if (h->stop)
			return false;
		usleep(50000);
	}
	return !h->stop;
}

static const char *parse_ok =
	"{\"parse\":{\"title\":\"Hostile\",\"pageid\":%s,\"revid\":%d,"
	"\"text\":\"<div class=\\\"mw-parser-output\\\"><p>Opening.</p>"
	"<h2>Part</h2><p>Body.</p></div>\",\"displaytitle\":\"<i>Hostile</i>\","
	"\"categories\":[{\"sortkey\":\"\",\"category\":\"Some_cat\"}],"
	"\"links\":[{\"ns\":0,\"title\":\"Other page\",\"exists\":true}],"
	"\"templates\":[],\"sections\":[]}}";

/* Builds a gzip stream of 1 GiB of spaces (about 1 MiB): one 1 MiB block
 * compressed with a full flush (byte-aligned, no references across it) is
 * repeated 1024 times between a gzip header and trailer, so it takes
 * milliseconds instead of compressing 1 GiB. */
static void make_bomb(struct hostile *h)
{
	static unsigned char in[1 << 20];
	memset(in, ' ', sizeof(in));
	unsigned char *blk = malloc(64 << 10);
	z_stream z;
	memset(&z, 0, sizeof(z));
	deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
	z.next_in = in;
	z.avail_in = sizeof(in);
	z.next_out = blk;
	z.avail_out = 64 << 10;
	deflate(&z, Z_FULL_FLUSH);
	size_t blk_len = (64 << 10) - z.avail_out;
	deflateEnd(&z);
	uLong crc1 = crc32(0L, in, sizeof(in)), crc = crc1;
	for (int i = 1; i < 1024; i++)
		crc = crc32_combine(crc, crc1, sizeof(in));
	h->bomb_len = 10 + blk_len * 1024 + 2 + 8;
	h->bomb = malloc(h->bomb_len);
	unsigned char *p = h->bomb;
	memcpy(p, "\x1f\x8b\x08\0\0\0\0\0\0\x03", 10);
	p += 10;
	for (int i = 0; i < 1024; i++, p += blk_len)
		memcpy(p, blk, blk_len);
	*p++ = 0x03; /* final, fixed-Huffman block holding only end-of-block */
	*p++ = 0x00;
	for (int i = 0; i < 4; i++)
		*p++ = (unsigned char)(crc >> (8 * i));
	uint32_t isize = (uint32_t)(1024u * sizeof(in)); /* 2^30 */
	for (int i = 0; i < 4; i++)
		*p++ = (unsigned char)(isize >> (8 * i));
	free(blk);
}

/* Answers one request; returns false to close the connection. */
static bool answer(struct hostile *h, int fd, const char *path)
{
	char route[64] = "";
	sscanf(path, "/%63[^/?]", route);
	bool is_query = strstr(path, "action=query") != NULL;
	char pageid[32] = "1";
	const char *p = strstr(path, is_query ? "pageids=" : "pageid=");
	if (p)
		sscanf(strchr(p, '=') + 1, "%31[0-9]", pageid);
	char body[8192];

	if (!strcmp(route, "ok") || !strcmp(route, "lag") ||
	    !strcmp(route, "infomissing") || !strcmp(route, "badparse")) {
		if (is_query) {
			/* pageids=1%7C2%7C3: one entry per id. */
			int off = snprintf(body, sizeof(body),
					   "{\"batchcomplete\":true,\"query\":{\"pages\":[");
			const char *q = strstr(path, "pageids=") + 8;
			for (int k = 0; *q >= '0' && *q <= '9' && k < 50; k++) {
				long id = strtol(q, (char **)&q, 10);
				if (!strcmp(route, "infomissing"))
					off += snprintf(body + off, sizeof(body) - (size_t)off,
							"%s{\"pageid\":%ld,\"missing\":true}",
							k ? "," : "", id);
				else
					off += snprintf(body + off, sizeof(body) - (size_t)off,
							"%s{\"pageid\":%ld,\"ns\":0,\"title\":"
							"\"Hostile\",\"pagelanguage\":\"de\","
							"\"lastrevid\":10}", k ? "," : "", id);
				if (!strncmp(q, "%7C", 3) || !strncmp(q, "%7c", 3))
					q += 3;
				else if (*q == '|')
					q++;
			}
			snprintf(body + off, sizeof(body) - (size_t)off, "]}}");
		} else if (!strcmp(route, "badparse")) {
			/* A JSON object, but no "parse" in it: found bad only
			 * when decoded, after a good info answer. */
			snprintf(body, sizeof(body), "{\"batchcomplete\":true}");
		} else {
			snprintf(body, sizeof(body), parse_ok, pageid,
				 !strcmp(route, "lag") ? 5 : 10);
		}
		return send_response(h, fd, 200, NULL, "application/json", body);
	}
	if (!strcmp(route, "slow")) {
		if (!send_str(h, fd, "HTTP/1.1 200 X\r\nContent-Type: "
				     "application/json\r\nContent-Length: 100000\r\n\r\n"))
			return false;
		while (nap(h, 200))
			if (!send_str(h, fd, "          "))
				return false;
		return false;
	}
	if (!strcmp(route, "stall")) {
		char c;
		while (!h->stop) {
			struct pollfd pfd = { fd, POLLIN, 0 };
			if (poll(&pfd, 1, 100) > 0 && recv(fd, &c, 1, 0) <= 0)
				break;
		}
		return false;
	}
	if (!strcmp(route, "500"))
		return send_response(h, fd, 500, NULL, "text/plain", "oops");
	if (!strcmp(route, "503"))
		return send_response(h, fd, 503, "Retry-After: 5\r\n", "text/plain",
				     "busy");
	if (!strcmp(route, "429"))
		return send_response(h, fd, 429, "Retry-After: 7\r\n", "text/plain",
				     "slow down");
	if (!strcmp(route, "chunked")) {
		if (!send_str(h, fd, "HTTP/1.1 200 X\r\nContent-Type: application/json\r\n"
				     "Transfer-Encoding: chunked\r\n\r\n"))
			return false;
		static char chunk[65536 + 16];
		int hl = snprintf(chunk, 16, "10000\r\n");
		memset(chunk + hl, ' ', 65536);
		memcpy(chunk + hl + 65536, "\r\n", 2);
		for (int i = 0; i < 800; i++) /* 800 x 64 KiB = 50 MiB */
			if (!send_all(h, fd, chunk, (size_t)hl + 65536 + 2))
				return false;
		send_str(h, fd, "0\r\n\r\n");
		return false;
	}
	if (!strcmp(route, "gzipbomb")) {
		pthread_mutex_lock(&h->mu);
		if (!h->bomb)
			make_bomb(h);
		pthread_mutex_unlock(&h->mu);
		char head[256];
		snprintf(head, sizeof(head),
			 "HTTP/1.1 200 X\r\nContent-Type: application/json\r\n"
			 "Content-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
			 h->bomb_len);
		if (!send_str(h, fd, head))
			return false;
		send_all(h, fd, h->bomb, h->bomb_len);
		return false;
	}
	if (!strncmp(route, "redir-", 6)) {
		char loc[256];
		if (!strcmp(route, "redir-file"))
			snprintf(loc, sizeof(loc), "file:///etc/passwd");
		else if (!strcmp(route, "redir-host"))
			snprintf(loc, sizeof(loc), "http://localhost:%d/ok/api.php%s",
				 h->port, strchr(path, '?') ? strchr(path, '?') : "");
		else if (!strcmp(route, "redir-scheme"))
			snprintf(loc, sizeof(loc), "https://127.0.0.1:%d/ok/api.php%s",
				 h->port, strchr(path, '?') ? strchr(path, '?') : "");
		else if (!strncmp(route, "redir-port-", 11))
			snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/ok/api.php%s",
				 atoi(route + 11), strchr(path, '?') ? strchr(path, '?') : "");
		else if (!strcmp(route, "redir-ok"))
			snprintf(loc, sizeof(loc), "/ok/api.php%s",
				 strchr(path, '?') ? strchr(path, '?') : "");
		else
			snprintf(loc, sizeof(loc), "/redir-loop/api.php%s",
				 strchr(path, '?') ? strchr(path, '?') : "");
		char hdr[400];
		snprintf(hdr, sizeof(hdr), "Location: %s\r\n", loc);
		return send_response(h, fd, 302, hdr, "text/plain", "moved");
	}
	if (!strcmp(route, "searchd-markup")) {
		/* freshet-searchd's answers with markup a search page must
		 * show as text: a script, an image, a foreign span, an
		 * unbalanced closing tag. */
		if (strstr(path, "/complete"))
			return send_response(h, fd, 200, NULL, "application/json",
					     "{\"query\":\"m\",\"results\":[{\"page_id\":1,"
					     "\"title\":\"Main Page\",\"url\":\"x\","
					     "\"redirect_title\":null}]}");
		return send_response(
			h, fd, 200, NULL, "application/json",
			"{\"query\":\"okapi\",\"total\":1,\"total_relation\":\"eq\","
			"\"shards\":{\"total\":1,\"ok\":1,\"failed\":0},\"took_ms\":1,"
			"\"results\":[{\"page_id\":1,\"namespace\":0,"
			"\"title\":\"Main Page\",\"url\":\"x\",\"language\":\"en\","
			"\"rev_id\":1,\"timestamp\":\"2026-12-06T00:12:00Z\",\"score\":1.0,"
			"\"snippet\":\"<script>alert(1)</script> the "
			"<span class=\\\"searchmatch\\\">okapi</span> "
			"<img src=x onerror=alert(2)> <span class=\\\"evil\\\">x</span>"
			"</span> &amp;lt;b&amp;gt;\","
			"\"title_snippet\":\"<b>Main</b> Page\","
			"\"redirect_title\":null,\"size\":100,\"word_count\":12}]}");
	}
	if (!strcmp(route, "html"))
		return send_response(h, fd, 200, NULL, "text/html",
				     "<!DOCTYPE html><html><body><h1>MediaWiki "
				     "internal error</h1></body></html>");
	if (!strcmp(route, "truncated"))
		return send_response(h, fd, 200, NULL, "application/json",
				     "{\"parse\":{\"title\":\"Hostile\",\"revid\":1");
	if (!strcmp(route, "noparse"))
		return send_response(h, fd, 200, NULL, "application/json",
				     "{\"batchcomplete\":true}");
	if (!strncmp(route, "err-", 4)) {
		snprintf(body, sizeof(body),
			 "{\"error\":{\"code\":\"%s\",\"info\":\"Something about "
			 "%s.\",\"docref\":\"See api.php\"},\"servedby\":\"x\"}",
			 route + 4, route + 4);
		char hdr[128];
		snprintf(hdr, sizeof(hdr), "MediaWiki-API-Error: %s\r\n", route + 4);
		return send_response(h, fd, 200, hdr, "application/json", body);
	}
	if (!strncmp(route, "hdr-", 4)) {
		/* The header with a body that is no JSON at all. */
		char hdr[128];
		snprintf(hdr, sizeof(hdr), "MediaWiki-API-Error: %s\r\n", route + 4);
		return send_response(h, fd, 200, hdr, "text/html",
				     "<!DOCTYPE html><p>Database lag</p>");
	}
	if (!strncmp(route, "noh-", 4)) {
		/* An error object without the header (for every request,
		 * the info query too). */
		snprintf(body, sizeof(body),
			 "{\"error\":{\"code\":\"%s\",\"info\":\"Something about "
			 "%s.\"},\"servedby\":\"x\"}", route + 4, route + 4);
		return send_response(h, fd, 200, NULL, "application/json", body);
	}
	return send_response(h, fd, 404, NULL, "text/plain", "no such route");
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct hostile *h = c->h;
	char req[8192];
	size_t len = 0;
	while (!h->stop) {
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		ssize_t r = recv(c->fd, req + len, sizeof(req) - 1 - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
		req[len] = '\0';
		char *end = strstr(req, "\r\n\r\n");
		if (!end) {
			if (len == sizeof(req) - 1)
				break;
			continue;
		}
		char path[4096] = "";
		sscanf(req, "GET %4095s", path);
		h->requests++;
		if (!answer(h, c->fd, path))
			break;
		size_t used = (size_t)(end + 4 - req);
		memmove(req, req + used, len - used);
		len -= used;
	}
	close(c->fd);
	free(c);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct hostile *h = arg;
	while (!h->stop) {
		struct pollfd pfd = { h->fd, POLLIN, 0 };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		int fd = accept(h->fd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&h->mu);
		if (h->n_conns == MAX_CONNS) {
			pthread_mutex_unlock(&h->mu);
			close(fd);
			continue;
		}
		struct conn *c = malloc(sizeof(*c));
		c->h = h;
		c->fd = fd;
		if (pthread_create(&h->conns[h->n_conns], NULL, conn_main, c) == 0)
			h->n_conns++;
		else {
			close(fd);
			free(c);
		}
		pthread_mutex_unlock(&h->mu);
	}
	return NULL;
}

struct hostile *hostile_start(void)
{
	struct hostile *h = calloc(1, sizeof(*h));
	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (h->fd < 0) {
		free(h);
		return NULL;
	}
	int one = 1;
	setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof(a);
	if (bind(h->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(h->fd, 256) < 0 ||
	    getsockname(h->fd, (struct sockaddr *)&a, &al) < 0) {
		close(h->fd);
		free(h);
		return NULL;
	}
	h->port = ntohs(a.sin_port);
	pthread_mutex_init(&h->mu, NULL);
	pthread_create(&h->acceptor, NULL, accept_main, h);
	return h;
}

int hostile_port(const struct hostile *h)
{
	return h->port;
}

char *hostile_api(const struct hostile *h, const char *route)
{
	char *s;
	if (asprintf(&s, "http://127.0.0.1:%d/%s/api.php", h->port, route) < 0)
		abort();
	return s;
}

long hostile_requests(const struct hostile *h)
{
	return h->requests;
}

void hostile_stop(struct hostile *h)
{
	if (!h)
		return;
	h->stop = true;
	pthread_join(h->acceptor, NULL);
	for (int i = 0; i < h->n_conns; i++)
		pthread_join(h->conns[i], NULL);
	close(h->fd);
	pthread_mutex_destroy(&h->mu);
	free(h->bomb);
	free(h);
}
