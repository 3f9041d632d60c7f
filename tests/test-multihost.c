/* SPDX-License-Identifier: MIT */
/*
 * test-multihost.c: freshet on several hosts, each a Linux network
 * namespace (lib/netns.h), through the death of the Redis primary and of a
 * whole host.
 *
 * The network: a bridge, and on it
 *   infra  NETNS_SUBNET.2   Redis primary and replica, three sentinels,
 *                           MediaWiki 1.39 (php -S on that address)
 *   a, b, c .11, .12, .13   each its own data_dir, a freshet-worker
 *                           (which runs the host's xapian-replicate
 *                           clients), xapian-replicate-server and a
 *                           freshet-searchd with search = replica
 *   ctl    .1               the test process itself: the change
 *                           generator, the publisher and the truth checker
 * No directory is shared between hosts; the workers know Redis only
 * through the sentinels.
 *
 * The scenario: random edits, creates, deletes, undeletes and moves on
 * MediaWiki through its API (FRESHET_TEST_CHANGES, default 1000); each
 * revision's text carries a token of its own, so that the truth is exact.
 * Each change is published to the primary the sentinels name, and, while
 * the primary has a replica, only counted once the replica has it (WAIT),
 * as a publisher that must not lose an event would.  During the changes
 * the primary is killed with SIGKILL (the sentinels promote the replica;
 * the workers follow), then every process of the host writing the most
 * shards (two of four: half), which starts again later with an empty
 * data_dir.  Its shards move to the others, which promote their replicas
 * and replay the stream from each shard's stored position.
 *
 * The end state asked of the system: every search host answers every
 * live page's latest token with exactly that page, and every other token
 * (a deleted page's, an earlier revision's) with nothing; no dead
 * letters; xapian-check passes on every shard copy, replicas included,
 * and every host holds a replica of each shard it does not write.  No
 * operator steps in: no replay of pages, no restart but the killed host's.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mw.h"
#include "netns.h"
#include "now.h"
#include "testsupport.h"

#define WIKI "testwiki"
#define SHARDS 4
#define MASTER "freshet-mh"
#define SEARCHD_PORT 7190
#define REPL_PORT 7010 /* xapian-replicate-server */
#define SEED_PAGES 40

enum { HOST_A, HOST_B, HOST_C, N_HOSTS };

struct host {
	const char *name;
	int octet;
	char dir[512], data[600], conf[600], log[600];
	pid_t worker, searchd, repl;
};

/* One page as the generator made it: MediaWiki's state, kept in step. */
struct mpage {
	char title[96];
	long id, rev;
	bool live;
	int tok; /* index of its current text's token */
};

struct token {
	char word[16];
	int page;
};

static struct {
	struct netns *net;
	char *dir;
	const char *infra_ns, *infra;
	struct test_redis *primary, *replica;
	struct test_sentinels *sentinels;
	bool wait_replica; /* the primary has a replica to WAIT for */
	struct mw *mw;
	struct host hosts[N_HOSTS];
	struct mpage *pages;
	size_t n_pages, cap_pages;
	struct token *toks;
	size_t n_toks, cap_toks;
	unsigned seed, nonce;
	size_t published, republished;
} E = {
	.hosts = {
		[HOST_A] = { .name = "a", .octet = 11 },
		[HOST_B] = { .name = "b", .octet = 12 },
		[HOST_C] = { .name = "c", .octet = 13 },
	},
};

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *grow(void *p, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : 64;
	p = realloc(p, *cap * size);
	cr_assert_not_null(p, "out of memory");
	return p;
}

/* ------------------------------------------------------------- Redis */

static redisContext *tcp(const char *host, int port)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout(host, port, tv);
	if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK)
		return c;
	if (c)
		redisFree(c);
	return NULL;
}

/* A connection to the primary the sentinels name now, or NULL. */
static redisContext *primary_conn(void)
{
	int port = test_sentinels_primary(E.sentinels);
	redisContext *c = port ? tcp(E.infra, port) : NULL;
	if (!c)
		return NULL;
	redisReply *r = redisCommand(c, "ROLE");
	bool primary = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		       strcmp(r->element[0]->str, "master") == 0;
	if (r)
		freeReplyObject(r);
	if (primary)
		return c;
	redisFree(c);
	return NULL;
}

/* Publishes a page event of kind to the primary the sentinels name, until
 * one takes it and, while there is a replica, the replica has it too. */
static void publish(const char *kind, long page_id, const char *title, long rev)
{
	char *ev = test_event(kind, WIKI, page_id, title, rev);
	double end = now_s() + 60;
	bool tried = false;
	while (now_s() < end) {
		redisContext *c = primary_conn();
		redisReply *r = c ? redisCommand(c, "XADD freshet:{" WIKI ":p%ld} * event %s",
						 page_id % SHARDS, ev)
				  : NULL;
		bool ok = r && r->type == REDIS_REPLY_STRING;
		if (r)
			freeReplyObject(r);
		if (ok && E.wait_replica) {
			r = redisCommand(c, "WAIT 1 2000");
			ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
			if (r)
				freeReplyObject(r);
		}
		if (c)
			redisFree(c);
		if (ok) {
			E.published++;
			free(ev);
			return;
		}
		/* Published again when in doubt: an event handled twice is
		 * harmless, a lost one is not. */
		if (!tried)
			E.republished++;
		tried = true;
		msleep(100);
	}
	cr_assert_fail("no primary took an event for 60 s");
}

/* The pid in a lease's owner token ("<hostname>-<pid>-<hex>"), 0 if none. */
static long lease_pid(redisContext *c, int p)
{
	redisReply *r = redisCommand(c, "GET freshet:{" WIKI ":p%d}:lease", p);
	long pid = 0;
	if (r && r->type == REDIS_REPLY_STRING) {
		char *last = strrchr(r->str, '-');
		if (last) {
			*last = '\0';
			char *mid = strrchr(r->str, '-');
			pid = mid ? strtol(mid + 1, NULL, 10) : 0;
		}
	}
	if (r)
		freeReplyObject(r);
	return pid;
}

/* Which writer host holds each partition's lease now (-1: none), through
 * c.  Returns how many partitions are held. */
static int lease_holders(redisContext *c, int holder[SHARDS])
{
	int held = 0;
	for (int p = 0; p < SHARDS; p++) {
		long pid = lease_pid(c, p);
		holder[p] = -1;
		for (int h = 0; h < N_HOSTS; h++)
			if (pid > 0 && E.hosts[h].worker == pid)
				holder[p] = h;
		held += holder[p] >= 0;
	}
	return held;
}

/* Waits until every partition's events are delivered and acknowledged. */
static void wait_quiet(double timeout_s)
{
	double end = now_s() + timeout_s;
	char why[256] = "";
	while (now_s() < end) {
		redisContext *c = primary_conn();
		snprintf(why, sizeof why, "%s", c ? "" : "no primary");
		for (int p = 0; c && p < SHARDS && !why[0]; p++) {
			char key[64];
			snprintf(key, sizeof key, "freshet:{" WIKI ":p%d}", p);
			test_stream_drained(c, key, why, sizeof why);
		}
		if (c)
			redisFree(c);
		if (!why[0])
			return;
		msleep(250);
	}
	cr_assert_fail("the queue did not drain in %.0f s: %s (logs in %s)", timeout_s, why, E.dir);
}

/* ------------------------------------------------------------ hosts */

static void write_conf(struct host *h)
{
	FILE *f = fopen(h->conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[redis]\nurl = redis://%s:1/0\nsentinels = %s\nmaster_name = " MASTER
		"\n\n"
		"[worker]\ndata_dir = %s\nthreads = 2\nbatch = 50\n"
		"commit_docs = 100\ncommit_ms = 200\nmax_deliveries = 5\n"
		"lease_ms = 2000\nshutdown_timeout_ms = 15000\n\n"
		"[searchd]\nlisten = %s:%d\nallow_anonymous = true\n\n",
		E.infra, E.sentinels->list, h->data, netns_addr(E.net, h->name), SEARCHD_PORT);
	fprintf(f,
		"[replication]\nchangesets = 1000\nadvertise = %s:%d\n"
		"wikis = " WIKI "\ninterval_s = 1\n\n",
		netns_addr(E.net, h->name), REPL_PORT);
	fprintf(f,
		"[wiki " WIKI
		"]\napi = %s\nlanguage = en\nshards = %d\n"
		"namespaces = 0\nconcurrency = 4\nrate = 0\nsaneitize_days = 0\n",
		mw_api_url(E.mw), SHARDS);
	/* Each shard from this host's own disk: its replica, or the copy
	 * its worker writes. */
	fprintf(f, "search = replica\n");
	fclose(f);
}

static void worker_start(struct host *h)
{
	const char *args[] = { "--config", h->conf, NULL };
	h->worker = netns_spawn(E.net, h->name, "freshet-worker", args, h->log);
}

static void searchd_start(struct host *h)
{
	const char *args[] = { "--config", h->conf, NULL };
	h->searchd = netns_spawn(E.net, h->name, "freshet-searchd", args, h->log);
	char url[128];
	snprintf(url, sizeof url, "http://%s:%d/healthz", netns_addr(E.net, h->name), SEARCHD_PORT);
	test_wait_http(url, h->searchd, h->log);
}

/* Waits until pid, a server of host h, accepts connections on port. */
static void wait_listening(struct host *h, int port, pid_t pid, const char *what)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, netns_addr(E.net, h->name), &a.sin_addr);
	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
		if (fd >= 0)
			close(fd);
		if (up)
			return;
		cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "%s exited; log in %s", what, h->log);
		msleep(50);
	}
	cr_assert_fail("%s did not answer; log in %s", what, h->log);
}

/* Starts xapian-replicate-server on host h, serving its data_dir to the
 * other hosts' replica clients (the operator's unit on a real host). */
static void replicate_server_start(struct host *h)
{
	char port[16];
	snprintf(port, sizeof port, "%d", REPL_PORT);
	const char *args[] = { "--interface", netns_addr(E.net, h->name), "--port", port, h->data,
			       NULL };
	h->repl = netns_spawn(E.net, h->name, "/usr/bin/xapian-replicate-server", args, h->log);
	wait_listening(h, REPL_PORT, h->repl, "xapian-replicate-server");
}

/* Starts host h's programs on an empty data_dir. */
static void host_boot(struct host *h)
{
	test_rmtree(h->data);
	cr_assert_eq(mkdir(h->data, 0700), 0, "mkdir %s: %s", h->data, strerror(errno));
	write_conf(h);
	replicate_server_start(h);
	worker_start(h);
	searchd_start(h);
}

/* ------------------------------------------------------ the changes */

/* A word no other revision has: letters without vowels or an 's', so that
 * no stemmer changes it and no two tokens share a stem. */
static int new_token(int page)
{
	static const char alpha[] = "bcfhkmpqtvwxz";
	E.toks = grow(E.toks, E.n_toks, &E.cap_toks, sizeof *E.toks);
	struct token *t = &E.toks[E.n_toks];
	unsigned v = (unsigned)E.n_toks * 7919u + E.nonce;
	t->word[0] = 'z';
	t->word[1] = 'q';
	for (int i = 2; i < 11; i++) {
		t->word[i] = alpha[v % 13];
		v /= 13;
	}
	t->word[11] = '\0';
	t->page = page;
	return (int)E.n_toks++;
}

static char *page_text(int tok)
{
	char *t;
	cr_assert(asprintf(&t, "A page on several hosts. Its revision token is %s.\n",
			   E.toks[tok].word) > 0);
	return t;
}

/* Saves a new revision of page i (a new token) and publishes it. */
static void edit_page(size_t i, const char *kind)
{
	struct mpage *p = &E.pages[i];
	p->tok = new_token((int)i);
	char *text = page_text(p->tok);
	cr_assert(mw_edit(E.mw, p->title, text, &p->id, &p->rev), "a null edit of %s", p->title);
	free(text);
	publish(kind, p->id, p->title, p->rev);
}

static size_t add_page(const char *title)
{
	E.pages = grow(E.pages, E.n_pages, &E.cap_pages, sizeof *E.pages);
	struct mpage *p = &E.pages[E.n_pages];
	memset(p, 0, sizeof *p);
	snprintf(p->title, sizeof p->title, "%s", title);
	p->live = true;
	return E.n_pages++;
}

static void seed_pages(void)
{
	const char *titles[SEED_PAGES];
	char *texts[SEED_PAGES];
	long ids[SEED_PAGES], revs[SEED_PAGES];
	for (int k = 0; k < SEED_PAGES; k++) {
		char t[64];
		snprintf(t, sizeof t, "Host page %d", k);
		size_t i = add_page(t);
		E.pages[i].tok = new_token((int)i);
		titles[k] = E.pages[i].title;
		texts[k] = page_text(E.pages[i].tok);
	}
	mw_seed(E.mw, SEED_PAGES, titles, (const char *const *)texts, ids, revs);
	for (int k = 0; k < SEED_PAGES; k++) {
		E.pages[k].id = ids[k];
		E.pages[k].rev = revs[k];
		publish("create", ids[k], titles[k], revs[k]);
		free(texts[k]);
	}
}

static struct mpage *pick(bool live)
{
	for (int tries = 0; tries < 50; tries++) {
		struct mpage *p = &E.pages[(size_t)rand_r(&E.seed) % E.n_pages];
		if (p->live == live)
			return p;
	}
	return NULL;
}

/* Reads a page's id and latest revision back after a move or undelete. */
static void refresh(struct mpage *p)
{
	struct mw_page_info info;
	cr_assert(mw_page_info(E.mw, p->title, &info), "%s is missing", p->title);
	p->id = info.page_id;
	p->rev = info.rev_id;
}

/* One random change: edit 50%, create 10%, delete 15%, undelete 10%,
 * move 15%. */
static void change(int serial)
{
	int r = rand_r(&E.seed) % 100;
	struct mpage *p;
	if (r < 50 && (p = pick(true))) {
		edit_page((size_t)(p - E.pages), "edit");
	} else if (r < 60) {
		char t[64];
		snprintf(t, sizeof t, "New host page %d", serial);
		edit_page(add_page(t), "create");
	} else if (r < 75 && (p = pick(true))) {
		mw_delete(E.mw, p->title);
		p->live = false;
		publish("delete", p->id, p->title, p->rev);
	} else if (r < 85 && (p = pick(false))) {
		mw_undelete(E.mw, p->title, NULL);
		p->live = true;
		refresh(p);
		publish("undelete", p->id, p->title, p->rev);
	} else if ((p = pick(true))) {
		char to[96];
		snprintf(to, sizeof to, "Moved host page %d", serial);
		mw_move(E.mw, p->title, to, false);
		snprintf(p->title, sizeof p->title, "%s", to);
		refresh(p);
		publish("move.noredirect", p->id, p->title, p->rev);
	}
}

/* Fails the test unless the generator's pages are MediaWiki's: the same
 * live pages under the same ids.  The truth is the wiki's. */
static void assert_model_is_the_wiki(void)
{
	struct mw_page_list *all = mw_all_pages(E.mw);
	size_t live = 0;
	for (size_t i = 0; i < E.n_pages; i++) {
		if (!E.pages[i].live)
			continue;
		live++;
		bool found = false;
		for (size_t k = 0; k < all->n && !found; k++)
			found = all->pages[k].page_id == E.pages[i].id &&
				strcmp(all->pages[k].title, E.pages[i].title) == 0;
		cr_assert(found, "MediaWiki has no page %ld \"%s\"", E.pages[i].id,
			  E.pages[i].title);
	}
	size_t wiki_live = 0;
	for (size_t k = 0; k < all->n; k++)
		wiki_live += all->pages[k].ns == 0 && strcmp(all->pages[k].title, "Main Page");
	cr_assert_eq(wiki_live, live, "MediaWiki has %zu pages, the generator %zu", wiki_live,
		     live);
	mw_page_list_free(all);
}

/* ----------------------------------------------------------- truth */

/* An HTTP answer's body. */
struct body {
	char *d;
	size_t len;
};

static size_t body_write(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	char *nd = realloc(b->d, b->len + size * n + 1);
	if (!nd)
		return 0;
	memcpy(nd + b->len, p, size * n);
	b->d = nd;
	b->len += size * n;
	b->d[b->len] = '\0';
	return size * n;
}

/* Asks host h's freshet-searchd for token t; NULL when the answer is the
 * truth (exactly its page when that page is live at that token, else
 * nothing), else why not (a static string). */
static const char *token_differs(CURL *c, struct host *h, size_t t)
{
	static char why[600];
	struct mpage *p = &E.pages[E.toks[t].page];
	long want = p->live && (size_t)p->tok == t ? p->id : 0;
	char url[256];
	snprintf(url, sizeof url, "http://%s:%d/v1/" WIKI "/search?q=%s&limit=5",
		 netns_addr(E.net, h->name), SEARCHD_PORT, E.toks[t].word);
	struct body b = { NULL, 0 };
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	json_t *j = rc == CURLE_OK && b.d ? json_loads(b.d, 0, NULL) : NULL;
	json_t *res = json_object_get(j, "results");
	why[0] = '\0';
	if (rc != CURLE_OK || status != 200 || !json_is_array(res)) {
		snprintf(why, sizeof why, "host %s, %s: %s, HTTP %ld: %.300s", h->name,
			 E.toks[t].word, curl_easy_strerror(rc), status, b.d ? b.d : "");
	} else if (want ? json_array_size(res) != 1 ||
				   json_integer_value(json_object_get(json_array_get(res, 0),
								      "page_id")) != want
			: json_array_size(res) != 0) {
		snprintf(why, sizeof why,
			 "host %s: %s (page %ld \"%s\", %s) should find %s, found %.300s", h->name,
			 E.toks[t].word, p->id, p->title,
			 p->live ? (want ? "its latest revision" : "an earlier revision")
				 : "deleted",
			 want ? "that page" : "nothing", b.d);
	}
	json_decref(j);
	free(b.d);
	return why[0] ? why : NULL;
}

/* Checks every token on every search host; NULL when all answer the
 * truth, else the first difference. */
static const char *truth_differs(void)
{
	const char *why = NULL;
	for (int h = 0; h < N_HOSTS && !why; h++) {
		CURL *c = curl_easy_init();
		cr_assert_not_null(c);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		for (size_t t = 0; t < E.n_toks && !why; t++)
			why = token_differs(c, &E.hosts[h], t);
		curl_easy_cleanup(c);
	}
	return why;
}

/* Waits until every partition is held, no worker holds more than its
 * fair share (ceil(partitions / live workers)), and the queue is drained;
 * fills holder. */
static void wait_settled(int holder[SHARDS])
{
	double end = now_s() + 60;
	int n[N_HOSTS], live = 0;
	for (int h = 0; h < N_HOSTS; h++)
		live += E.hosts[h].worker > 0;
	int share = (SHARDS + live - 1) / live;
	for (;;) {
		wait_quiet(120);
		redisContext *c = primary_conn();
		int held = c ? lease_holders(c, holder) : 0;
		if (c)
			redisFree(c);
		memset(n, 0, sizeof n);
		bool fair = true;
		for (int p = 0; p < SHARDS; p++)
			if (holder[p] >= 0)
				fair &= ++n[holder[p]] <= share;
		if (held == SHARDS && fair)
			return;
		cr_assert_lt(now_s(), end,
			     "leases not shared: %d of %d held, a %d, b %d, c %d; logs in %s", held,
			     SHARDS, n[HOST_A], n[HOST_B], n[HOST_C], E.dir);
		msleep(500);
	}
}

static void assert_no_dead_letters(void)
{
	redisContext *c = primary_conn();
	cr_assert_not_null(c, "no primary");
	redisReply *r = redisCommand(c, "XLEN freshet:{" WIKI "}:dead");
	cr_assert(r && r->type == REDIS_REPLY_INTEGER);
	cr_assert_eq(r->integer, 0, "%lld dead letters; logs in %s", r->integer, E.dir);
	freeReplyObject(r);
	redisFree(c);
}

/* Sets dir to the live slot of host h's replica of shard p, the one its
 * stub XAPIANDB names ("auto replica_1"); false when h has no replica. */
static bool replica_slot(const struct host *h, int p, char *dir, size_t len)
{
	char stub[700], line[256], slot[128] = "";
	snprintf(stub, sizeof stub, "%s/" WIKI "/replica/shard-%d/XAPIANDB", h->data, p);
	FILE *f = fopen(stub, "r");
	if (!f)
		return false;
	while (!slot[0] && fgets(line, sizeof line, f))
		if (sscanf(line, "auto %127s", slot) != 1)
			slot[0] = '\0';
	fclose(f);
	snprintf(dir, len, "%s/" WIKI "/replica/shard-%d/%s", h->data, p, slot);
	return slot[0] != '\0';
}

static void xapian_check(const char *dir)
{
	char cmd[800];
	snprintf(cmd, sizeof cmd, "xapian-check %s >/dev/null 2>&1", dir);
	cr_assert_eq(system(cmd), 0, "xapian-check %s failed", dir);
}

/* xapian-check on every shard copy of every host, replicas included; each
 * shard must have one copy at least.  Returns the number of replicas. */
static int assert_xapian_check(void)
{
	int copies[SHARDS] = { 0 }, replicas = 0;
	for (int h = 0; h < N_HOSTS; h++) {
		for (int p = 0; p < SHARDS; p++) {
			char dir[700];
			struct stat st;
			snprintf(dir, sizeof dir, "%s/" WIKI "/current/shard-%d", E.hosts[h].data,
				 p);
			if (stat(dir, &st) == 0) {
				copies[p]++;
				xapian_check(dir);
			}
			if (replica_slot(&E.hosts[h], p, dir, sizeof dir)) {
				replicas++;
				xapian_check(dir);
			}
		}
	}
	for (int p = 0; p < SHARDS; p++)
		cr_assert_gt(copies[p], 0, "shard %d has no copy on any host", p);
	return replicas;
}

/* The host whose worker holds the most partitions now. */
static int busiest_writer(void)
{
	int holder[SHARDS], n[N_HOSTS] = { 0 }, best = HOST_B;
	redisContext *c = primary_conn();
	cr_assert_not_null(c, "no primary");
	lease_holders(c, holder);
	redisFree(c);
	for (int p = 0; p < SHARDS; p++)
		if (holder[p] >= 0)
			n[holder[p]]++;
	for (int h = 0; h < N_HOSTS; h++)
		if (n[h] > n[best])
			best = h;
	return best;
}

/* ------------------------------------------------------------ setup */

static void setup(void)
{
	E.net = netns_new();
	netns_add_host(E.net, "ctl", 1);
	E.infra_ns = netns_add_host(E.net, "infra", 2);
	E.infra = netns_addr(E.net, "infra");
	for (int h = 0; h < N_HOSTS; h++)
		netns_add_host(E.net, E.hosts[h].name, E.hosts[h].octet);
	netns_enter(E.net, "ctl");

	E.dir = test_mkdtemp("multihost");
	E.primary = test_redis_start_at(E.infra_ns, E.infra, NULL);
	E.replica = test_redis_start_at(E.infra_ns, E.infra, E.primary);
	E.sentinels = test_sentinels_start_at(E.infra_ns, E.infra, E.primary, MASTER, 3);
	E.wait_replica = true;
	struct mw_opts o = { .wiki_id = WIKI, .lang = "en", .netns = E.infra_ns, .host = E.infra };
	E.mw = mw_start(&o);
	for (int h = 0; h < N_HOSTS; h++) {
		struct host *x = &E.hosts[h];
		/* Formatted from a local copy: gcc -O0 warns (-Wrestrict) when
		 * source and destination are both members of E. */
		char dir[sizeof x->dir];
		snprintf(dir, sizeof dir, "%s/host-%s", E.dir, x->name);
		cr_assert_eq(mkdir(dir, 0700), 0);
		memcpy(x->dir, dir, sizeof dir);
		snprintf(x->data, sizeof x->data, "%s/data", dir);
		snprintf(x->conf, sizeof x->conf, "%s/freshet.conf", dir);
		snprintf(x->log, sizeof x->log, "%s/host.log", dir);
	}
	E.nonce = (unsigned)getpid() * 2654435761u;
	E.seed = E.nonce;
}

static void teardown(void)
{
	/* The wiki first: its server is no process of the harness's hosts. */
	mw_stop(E.mw);
	netns_free(E.net);
	test_sentinels_stop(E.sentinels);
	test_redis_stop(E.replica);
	test_redis_stop(E.primary);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(E.dir);
	free(E.dir);
	free(E.pages);
	free(E.toks);
}

TestSuite(multihost, .timeout = 1800);

/* The scenario; setup() runs in the test, not as .init, so that teardown()
 * cleans up after a failed setup too. */
Test(multihost, hosts_answer_the_wikis_truth_after_failures, .fini = teardown)
{
	setup();
	const char *env = getenv("FRESHET_TEST_CHANGES");
	int changes = env && atoi(env) > 0 ? atoi(env) : 1000;
	int kill_primary = changes / 4, kill_host = changes * 2 / 5, boot_host = changes * 3 / 5;
	int victim = HOST_B;
	int primary_port = E.primary->port, replica_port = E.replica->port;
	cr_assert_eq(test_sentinels_primary(E.sentinels), primary_port);
	for (int h = 0; h < N_HOSTS; h++)
		host_boot(&E.hosts[h]);

	double t0 = now_s();
	seed_pages();
	for (int i = 0; i < changes; i++) {
		if (i == kill_primary) {
			test_redis_kill9(E.primary);
			/* Every event published so far is on the replica
			 * (WAIT); the new primary has no replica to wait for. */
			E.wait_replica = false;
		}
		if (i == kill_host) {
			/* The host writing the most shards (half of them), all
			 * its processes at once. */
			struct host *x = &E.hosts[victim = busiest_writer()];
			cr_assert_geq(netns_kill_host(E.net, x->name), 2);
			x->worker = x->searchd = x->repl = 0;
		}
		if (i == boot_host)
			host_boot(&E.hosts[victim]);
		change(i);
	}
	double t_changes = now_s() - t0;
	cr_assert_eq(test_sentinels_primary(E.sentinels), replica_port,
		     "the sentinels did not promote the replica");
	assert_model_is_the_wiki();

	/* The workers followed the promoted replica: each still runs. */
	for (int h = 0; h < N_HOSTS; h++)
		cr_assert_eq(waitpid(E.hosts[h].worker, NULL, WNOHANG), 0,
			     "the worker of %s exited; log in %s", E.hosts[h].name, E.hosts[h].log);

	int holder[SHARDS];
	wait_settled(holder);

	const char *why = NULL;
	double end = now_s() + 60;
	while ((why = truth_differs()) && now_s() < end)
		msleep(1000);
	cr_assert_null(why, "a search host differs from the wiki: %s (logs in %s)", why ? why : "",
		       E.dir);
	assert_no_dead_letters();
	int replicas = assert_xapian_check();
	cr_assert_eq(replicas, SHARDS * (N_HOSTS - 1),
		     "%d replicas, not one of each shard on each host that does not write it; "
		     "logs in %s",
		     replicas, E.dir);

	size_t live = 0;
	for (size_t i = 0; i < E.n_pages; i++)
		live += E.pages[i].live;
	/* Printed, not logged as a warning: Criterion fails a run that
	 * warned. */
	fprintf(stderr,
		"test-multihost: %d changes in %.0f s on %zu pages (%zu live), "
		"%zu tokens checked on %d search hosts, %zu events published (%zu again), "
		"host %s killed, %d replicas checked\n",
		changes, t_changes, E.n_pages, live, E.n_toks, N_HOSTS, E.published, E.republished,
		E.hosts[victim].name, replicas);
}

/* The output of `ip ARGS` run in the caller's namespace. */
static char *ip_show(const char *args)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "ip %s 2>&1", args);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	char *out = calloc(1, 65536);
	cr_assert_not_null(out);
	size_t n = fread(out, 1, 65535, f);
	out[n] = '\0';
	pclose(f);
	return out;
}

/* The harness itself: hosts reach each other over the bridge, the root
 * namespace's addresses and routes stay as they were, a host's processes
 * die with netns_kill_host(), and a dead run's namespaces are removed by
 * the next run. */
Test(multihost, harness_isolates_hosts_and_cleans_up)
{
	/* A namespace of a run whose process is gone. */
	pid_t dead = fork();
	cr_assert(dead >= 0);
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	char stale[64], cmd[128];
	snprintf(stale, sizeof stale, "freshet-mh-%ld-x", (long)dead);
	snprintf(cmd, sizeof cmd, "ip netns add %s", stale);
	cr_assert_eq(system(cmd), 0, "%s", cmd);

	char *addrs = ip_show("-o addr"), *routes = ip_show("route");
	struct netns *n = netns_new();
	char *list = ip_show("netns list");
	cr_assert_null(strstr(list, stale), "the stale namespace %s is still there", stale);
	free(list);
	netns_add_host(n, "a", 21);
	netns_add_host(n, "b", 22);
	char *addrs2 = ip_show("-o addr"), *routes2 = ip_show("route");
	cr_assert_str_eq(addrs2, addrs, "the root namespace's addresses changed");
	cr_assert_str_eq(routes2, routes, "the root namespace's routes changed");

	char dir[] = "/tmp/freshet-netns-XXXXXX", log[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(log, sizeof log, "%s/redis.log", dir);
	const char *args[] = { "--bind", netns_addr(n, "a"), "--port", "7000",  "--save",
			       "",       "--protected-mode", "no",     "--dir", dir,
			       NULL };
	pid_t pid = netns_spawn(n, "a", "/usr/bin/redis-server", args, log);

	/* From b, a answers at its address; nothing answers at b's loopback. */
	netns_enter(n, "b");
	redisContext *c = NULL;
	for (int i = 0; i < 100 && !c; i++) {
		c = tcp(netns_addr(n, "a"), 7000);
		if (!c)
			msleep(50);
	}
	cr_assert_not_null(c, "host b cannot reach host a; log in %s", log);
	redisReply *r = redisCommand(c, "PING");
	cr_assert(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0);
	freeReplyObject(r);
	redisFree(c);
	c = tcp("127.0.0.1", 7000);
	cr_assert_null(c, "host a's server answers on host b's loopback");

	cr_assert_eq(netns_kill_host(n, "a"), 1);
	cr_assert_eq(kill(pid, 0), -1, "host a's process survived its host");
	c = tcp(netns_addr(n, "a"), 7000);
	cr_assert_null(c, "host a still answers after its processes were killed");

	netns_free(n);
	list = ip_show("netns list");
	char mine[64];
	snprintf(mine, sizeof mine, "freshet-mh-%ld-", (long)getpid());
	cr_assert_null(strstr(list, mine), "namespaces left behind: %s", list);
	free(list);
	test_rmtree(dir);
	free(addrs);
	free(routes);
	free(addrs2);
	free(routes2);
}
