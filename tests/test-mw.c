/* SPDX-License-Identifier: MIT */
/*
 * test-mw.c: the private-MediaWiki harness (tests/lib/mw.c and
 * tests/integration/mediawiki.sh) that every end-to-end test stands on.
 *
 * Each test starts its own wiki (about a second from the cached template)
 * and checks what the harness did against what MediaWiki's API reports.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mw.h"
#include "testsupport.h"

static struct mw *mw;

/* True while process group pg has a member that is not a zombie (dead
 * processes stay zombies until init reaps them, up to a second here). */
static bool group_alive(pid_t pg)
{
	DIR *d = opendir("/proc");
	cr_assert_not_null(d);
	struct dirent *de;
	bool alive = false;
	while (!alive && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[300], line[512];
		snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(line, sizeof line, f)) {
			char *p = strrchr(line, ')');
			char state;
			long ppid, pgrp;
			if (p && sscanf(p + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3)
				alive = pgrp == pg && state != 'Z';
		}
		fclose(f);
	}
	closedir(d);
	return alive;
}

static void start(void)
{
	mw = mw_start(NULL);
}

static void stop(void)
{
	mw_stop(mw);
	mw = NULL;
}

TestSuite(mw, .init = start, .fini = stop, .timeout = 120);

Test(mw, start_serves_the_api_and_writes_its_files)
{
	cr_assert_str_eq(mw_wiki_id(mw), "testwiki");
	char want[64];
	snprintf(want, sizeof want, "http://127.0.0.1:%d/api.php", mw_port(mw));
	cr_assert_str_eq(mw_api_url(mw), want);
	json_t *j = mw_api(mw, false, "action=query&meta=siteinfo");
	json_t *g = json_object_get(json_object_get(j, "query"), "general");
	cr_assert_str_eq(json_string_value(json_object_get(g, "generator")),
			 "MediaWiki 1.39.17");
	cr_assert_str_eq(json_string_value(json_object_get(g, "lang")), "en");
	cr_assert_str_eq(json_string_value(json_object_get(g, "wikiid")), "testwiki");
	json_decref(j);
	/* Logged in as Admin, who may set page languages. */
	j = mw_api(mw, false, "action=query&meta=userinfo&uiprop=rights");
	json_t *ui = json_object_get(json_object_get(j, "query"), "userinfo");
	cr_assert_str_eq(json_string_value(json_object_get(ui, "name")), "Admin");
	bool pagelang = false;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(ui, "rights"), i, r)
		pagelang |= strcmp(json_string_value(r), "pagelang") == 0;
	cr_assert(pagelang, "Admin lacks the pagelang right");
	json_decref(j);
	/* The files other tools read. */
	char *path, *s;
	cr_assert(asprintf(&path, "%s/api", mw_dir(mw)) > 0);
	s = test_read_file(path, NULL);
	cr_assert_not_null(s);
	cr_assert_eq(strncmp(s, want, strlen(want)), 0);
	free(s);
	free(path);
	/* SQLite runs in WAL mode: bytes 18 and 19 of the header are 2. */
	cr_assert(asprintf(&path, "%s/data/testwiki.sqlite", mw_dir(mw)) > 0);
	size_t len;
	s = test_read_file(path, &len);
	cr_assert(s && len > 100, "no database %s", path);
	cr_assert_eq(s[18], 2, "%s is not in WAL mode", path);
	cr_assert_eq(s[19], 2, "%s is not in WAL mode", path);
	free(s);
	free(path);
}

Test(mw, edit_creates_then_adds_revisions_and_null_edit_adds_none)
{
	long pid, rid1, rid2, rid3, pid2;
	cr_assert(mw_edit(mw, "Harness page", "first text", &pid, &rid1));
	cr_assert_gt(pid, 0);
	struct mw_page_info info;
	cr_assert(mw_page_info(mw, "Harness_page", &info));
	cr_assert_eq(info.page_id, pid);
	cr_assert_eq(info.rev_id, rid1);
	cr_assert_eq(info.ns, 0);
	cr_assert_str_eq(info.title, "Harness page");
	cr_assert_not(info.is_redirect);

	cr_assert(mw_edit(mw, "Harness page", "second text", &pid2, &rid2));
	cr_assert_eq(pid2, pid);
	cr_assert_gt(rid2, rid1);
	/* Same text again: a null edit, no new revision. */
	cr_assert_not(mw_edit(mw, "Harness page", "second text", &pid2, &rid3));
	cr_assert_eq(rid3, rid2);
	cr_assert(mw_page_info_id(mw, pid, &info));
	cr_assert_eq(info.rev_id, rid2);
	cr_assert_str_eq(info.title, "Harness page");

	/* Other namespaces keep their id and prefix. */
	long tpid;
	cr_assert(mw_edit(mw, "Talk:Harness page", "talk", &tpid, NULL));
	cr_assert(mw_page_info_id(mw, tpid, &info));
	cr_assert_eq(info.ns, 1);
	cr_assert_str_eq(info.title, "Talk:Harness page");

	cr_assert_not(mw_page_info(mw, "Never created", &info));
	cr_assert_eq(info.page_id, 0);
	cr_assert_not(mw_page_info_id(mw, 999999, &info));
}

Test(mw, delete_and_undelete_restore_the_page)
{
	long pid, rid, upid;
	mw_edit(mw, "Doomed", "text", &pid, &rid);
	mw_delete(mw, "Doomed");
	struct mw_page_info info;
	cr_assert_not(mw_page_info(mw, "Doomed", &info));
	cr_assert_not(mw_page_info_id(mw, pid, &info));
	mw_undelete(mw, "Doomed", &upid);
	cr_assert(mw_page_info(mw, "Doomed", &info));
	cr_assert_eq(info.page_id, upid);
	cr_assert_eq(info.rev_id, rid, "undelete restores the latest revision");
}

Test(mw, move_keeps_the_page_id_and_may_leave_a_redirect)
{
	long pid, rid;
	mw_edit(mw, "Old name", "moving text", &pid, &rid);
	mw_move(mw, "Old name", "New name", false);
	struct mw_page_info info;
	cr_assert_not(mw_page_info(mw, "Old name", &info));
	cr_assert(mw_page_info(mw, "New name", &info));
	cr_assert_eq(info.page_id, pid);
	cr_assert_gt(info.rev_id, rid, "a move adds a null revision");

	mw_move(mw, "New name", "Help:Newer name", true);
	cr_assert(mw_page_info(mw, "Help:Newer name", &info));
	cr_assert_eq(info.page_id, pid);
	cr_assert_eq(info.ns, 12);
	cr_assert(mw_page_info(mw, "New name", &info));
	cr_assert(info.is_redirect);
	cr_assert_neq(info.page_id, pid);
}

Test(mw, page_language_is_set_and_read_back)
{
	mw_edit(mw, "Sprache", "Ein Text", NULL, NULL);
	struct mw_page_info info;
	mw_page_info(mw, "Sprache", &info);
	cr_assert_str_eq(info.lang, "en");
	mw_set_language(mw, "Sprache", "de");
	mw_page_info(mw, "Sprache", &info);
	cr_assert_str_eq(info.lang, "de");
	mw_set_language(mw, "Sprache", NULL);
	mw_page_info(mw, "Sprache", &info);
	cr_assert_str_eq(info.lang, "en");
}

Test(mw, seed_creates_many_pages_listed_by_all_pages)
{
	enum { N = 40 };
	char *titles[N], *texts[N];
	long pids[N], rids[N];
	for (int i = 0; i < N; i++) {
		cr_assert(asprintf(&titles[i], "%sSeed %d", i % 4 == 3 ? "Talk:" : "",
				   i) > 0);
		cr_assert(asprintf(&texts[i], "Seeded page number %d.", i) > 0);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	mw_seed(mw, N, (const char *const *)titles, (const char *const *)texts,
		pids, rids);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_log_info("mw_seed: %d pages in %.2f s (%.1f pages/s)", N, s, N / s);

	struct mw_page_list *all = mw_all_pages(mw);
	/* The seeded pages and the installer's Main Page. */
	cr_assert_eq(all->n, N + 1);
	for (int i = 0; i < N; i++) {
		bool found = false;
		for (size_t k = 0; k < all->n; k++) {
			if (all->pages[k].page_id != pids[i])
				continue;
			found = true;
			cr_assert_str_eq(all->pages[k].title, titles[i]);
			cr_assert_eq(all->pages[k].ns, i % 4 == 3 ? 1 : 0);
		}
		cr_assert(found, "%s (page %ld) not listed", titles[i], pids[i]);
		struct mw_page_info info;
		cr_assert(mw_page_info_id(mw, pids[i], &info));
		cr_assert_eq(info.rev_id, rids[i]);
		free(titles[i]);
		free(texts[i]);
	}
	mw_page_list_free(all);
}

Test(mw, jobs_rerender_pages_that_use_a_template)
{
	mw_edit(mw, "Template:Greeting", "Hello", NULL, NULL);
	long pid;
	mw_edit(mw, "Greeter", "{{Greeting}} world", &pid, NULL);
	/* MediaWiki's timestamps have one-second resolution: a page rendered in
	 * the same second as the template edit keeps its cached rendering. */
	sleep(1);
	mw_edit(mw, "Template:Greeting", "Goodbye", NULL, NULL);
	mw_run_jobs(mw);
	json_t *j = mw_api(mw, false, "action=query&list=embeddedin"
				      "&eititle=Template:Greeting");
	json_t *e = json_object_get(json_object_get(j, "query"), "embeddedin");
	cr_assert_eq(json_array_size(e), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(e, 0),
							"pageid")), pid);
	json_decref(j);
	char q[128];
	snprintf(q, sizeof q, "action=parse&pageid=%ld&prop=text", pid);
	j = mw_api(mw, false, q);
	const char *html = json_string_value(json_object_get(
		json_object_get(j, "parse"), "text"));
	cr_assert_not_null(html);
	cr_assert_not_null(strstr(html, "Goodbye world"), "%s", html);
	json_decref(j);
}

/* The server's pid (= its process group) that mediawiki.sh wrote in dir. */
static pid_t server_pid(const char *dir)
{
	char *path;
	cr_assert(asprintf(&path, "%s/pid", dir) > 0);
	char *s = test_read_file(path, NULL);
	cr_assert_not_null(s, "no %s", path);
	pid_t pid = (pid_t)atol(s);
	cr_assert_gt(pid, 1, "bad pid in %s", path);
	free(s);
	free(path);
	return pid;
}

/* True if something accepts connections on the wiki's port. */
static bool port_answers(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

Test(mw, pause_and_resume_keep_the_data_and_the_url)
{
	long pid, rid;
	mw_edit(mw, "Survivor", "before the outage", &pid, &rid);
	char *api = strdup(mw_api_url(mw));
	mw_pause(mw);
	cr_assert_not(port_answers(mw_port(mw)), "the wiki still answers while paused");
	mw_resume(mw);
	cr_assert_str_eq(mw_api_url(mw), api);
	struct mw_page_info info;
	cr_assert(mw_page_info(mw, "Survivor", &info));
	cr_assert_eq(info.page_id, pid);
	cr_assert_eq(info.rev_id, rid);
	long rid2;
	cr_assert(mw_edit(mw, "Survivor", "after the outage", NULL, &rid2));
	cr_assert_gt(rid2, rid);
	free(api);
}

/* Without the suite fixture: a German wiki in a given directory, and
 * stop really ends the server's process group. */
Test(mw_alone, german_wiki_in_a_given_dir_stops_completely, .timeout = 120)
{
	char *dir = test_mkdtemp("mw-de");
	struct mw_opts o = { .wiki_id = "dewiki", .lang = "de", .dir = dir };
	struct mw *w = mw_start(&o);
	json_t *j = mw_api(w, false, "action=query&meta=siteinfo");
	json_t *g = json_object_get(json_object_get(j, "query"), "general");
	cr_assert_str_eq(json_string_value(json_object_get(g, "lang")), "de");
	cr_assert_str_eq(json_string_value(json_object_get(g, "wikiid")), "dewiki");
	json_decref(j);
	long pid;
	mw_edit(w, "Straße", "Über Straßen.", &pid, NULL);
	struct mw_page_info info;
	cr_assert(mw_page_info_id(w, pid, &info));
	cr_assert_str_eq(info.title, "Straße");
	cr_assert_str_eq(info.lang, "de");

	pid_t server = server_pid(dir);
	cr_assert(group_alive(server), "server group %d not running", server);
	mw_stop(w);
	cr_assert_not(group_alive(server), "server group %d survived stop", server);
	/* A given directory is left in place, without its pid file. */
	char *pidfile;
	cr_assert(asprintf(&pidfile, "%s/pid", dir) > 0);
	FILE *f = fopen(pidfile, "r");
	cr_assert_null(f, "pid file left behind");
	char *ls;
	cr_assert(asprintf(&ls, "%s/LocalSettings.php", dir) > 0);
	f = fopen(ls, "r");
	cr_assert_not_null(f);
	fclose(f);
	free(ls);
	free(pidfile);
	test_rmtree(dir);
	free(dir);
}

/* A test process that dies without mw_stop() leaves no server behind. */
Test(mw_alone, server_dies_with_its_owner, .timeout = 120)
{
	char *dir = test_mkdtemp("mw-owner");
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		close(fds[0]);
		struct mw_opts o = { .dir = dir };
		struct mw *w = mw_start(&o);
		(void)w;
		char c = 'x';
		if (write(fds[1], &c, 1) != 1)
			_exit(2);
		_exit(0);       /* no mw_stop() */
	}
	close(fds[1]);
	char c;
	cr_assert_eq(read(fds[0], &c, 1), 1, "the child did not start a wiki");
	close(fds[0]);
	int st;
	waitpid(child, &st, 0);
	pid_t server = server_pid(dir);
	int i;
	for (i = 0; i < 100 && group_alive(server); i++)
		usleep(100 * 1000);
	cr_assert_lt(i, 100, "server group %d outlived its owner by 10 s", server);
	test_rmtree(dir);
	free(dir);
}
