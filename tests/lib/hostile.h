/* SPDX-License-Identifier: MIT */
/*
 * hostile.h: a misbehaving HTTP server for the fetcher's and the search
 * backend's tests.
 *
 * It runs as threads inside the test process, listens on 127.0.0.1 on a
 * port the kernel picks, and answers each request by the first path
 * segment ("route") of its URL, so that a test points a wiki's api at
 * http://127.0.0.1:<port>/<route>/api.php and gets that behaviour:
 *
 *   ok          a valid parse answer (revid 10, text with a heading) and a
 *               valid info answer (ns 0, pagelanguage "de")
 *   lag         a parse answer with revid 5
 *   slow        Content-Length 100000, then 10 bytes every 200 ms
 *   stall       reads the request and never answers
 *   500, 503, 429
 *               that status; 503 sends "Retry-After: 5", 429
 *               "Retry-After: 7"
 *   chunked     200, chunked, 50 MiB of JSON-ish bytes
 *   gzipbomb    200, Content-Encoding: gzip, ~1 MiB that decodes to 1 GiB
 *   redir-file  302 to file:///etc/passwd
 *   redir-host  302 to the same path on "localhost" (another host name)
 *   redir-scheme 302 to https on the same host and port
 *   redir-port-<n> 302 to /ok/api.php on the same host, port n
 *   redir-loop  302 to /redir-loop/api.php again, forever
 *   redir-ok    302 to /ok/api.php on the same host
 *   html        200 text/html
 *   truncated   200 with the first half of a JSON answer
 *   noparse     200 {"batchcomplete":true}
 *   err-<code>  200 {"error":{"code":"<code>","info":"..."}}
 *   infomissing parse ok, but the info query says the page is missing
 *   searchd-markup  a freshet-searchd search answer (a completion answer
 *               for a path holding "/complete") whose snippets carry
 *               markup a search page must show as text: <script>, <img>,
 *               a foreign span, an unbalanced </span>
 *
 * Every request also counts in hostile_requests().  Stopping joins every
 * thread and frees everything.
 */
#ifndef FRESHET_HOSTILE_H
#define FRESHET_HOSTILE_H

struct hostile;

/* Starts the server; returns NULL (errno set) if it cannot listen.  The
 * gzip bomb is built at its first request (about a second). */
struct hostile *hostile_start(void);
int hostile_port(const struct hostile *h);
/* Returns "http://127.0.0.1:<port>/<route>/api.php" (caller frees). */
char *hostile_api(const struct hostile *h, const char *route);
/* Requests answered so far. */
long hostile_requests(const struct hostile *h);
/* Stops and frees h.  NULL is a no-op. */
void hostile_stop(struct hostile *h);

#endif
