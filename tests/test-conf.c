/* SPDX-License-Identifier: MIT */
/*
 * test-conf.c: freshet.conf: the defaults, every key, and each error with
 * the file name and line it names.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "testsupport.h"

static struct conf *load(const char *text, enum status want)
{
	struct conf *cfg = conf_new();
	enum status st = conf_load_string(cfg, "freshet.conf", text);
	cr_assert_eq(st, want, "status %s, message '%s'", status_str(st),
		     conf_errmsg(cfg));
	return cfg;
}

static void expect_error(const char *text, const char *msg)
{
	struct conf *cfg = load(text, STATUS_CONFIG);
	cr_assert_str_eq(conf_errmsg(cfg), msg);
	conf_free(cfg);
}

Test(conf, defaults_without_a_file)
{
	unsetenv("FRESHET_REDIS_PASSWORD");
	struct conf *cfg = conf_new();
	cr_assert_eq(conf_load(cfg, NULL), STATUS_OK);
	cr_assert_null(cfg->path);
	cr_assert_str_eq(cfg->redis_url, "redis://127.0.0.1:6379/0");
	cr_assert_str_eq(cfg->redis_host, "127.0.0.1");
	cr_assert_eq(cfg->redis_port, 6379);
	cr_assert_eq(cfg->redis_db, 0);
	cr_assert_null(cfg->redis_socket);
	cr_assert_null(cfg->redis_password);
	cr_assert_str_eq(cfg->data_dir, "/var/lib/freshet");
	cr_assert_str_eq(cfg->analyzer_dir, "");
	cr_assert_eq(cfg->threads, 0);
	cr_assert_eq(cfg->batch, 100);
	cr_assert_eq(cfg->commit_docs, 1000);
	cr_assert_eq(cfg->commit_ms, 1000);
	cr_assert_eq(cfg->max_deliveries, 5);
	cr_assert_eq(cfg->max_interrupted, 20);
	cr_assert_eq(cfg->max_event_bytes, 65536);
	cr_assert_eq(cfg->lease_ms, 30000);
	cr_assert_eq(cfg->shutdown_timeout_ms, 30000);
	cr_assert_str_eq(cfg->metrics_listen, "");
	cr_assert_null(cfg->metrics_host);
	cr_assert_eq(cfg->n_wikis, 1);
	const struct conf_wiki *w = conf_wiki(cfg, CONF_DEFAULT_WIKI);
	cr_assert_not_null(w);
	cr_assert_str_eq(w->id, "my_wiki");
	cr_assert_str_eq(w->api, "http://127.0.0.1/w/api.php");
	cr_assert_str_eq(w->language, "en");
	cr_assert_eq(w->shards, 4);
	cr_assert_eq(w->n_namespaces, 1);
	cr_assert_eq(w->namespaces[0], 0);
	cr_assert(conf_wiki_indexes(w, 0));
	cr_assert_not(conf_wiki_indexes(w, 1));
	cr_assert_eq(w->concurrency, 8);
	cr_assert_float_eq(w->rate, 50.0, 1e-9);
	cr_assert_str_eq(w->user_agent_contact, "");
	conf_free(cfg);
}

Test(conf, every_key)
{
	unsetenv("FRESHET_REDIS_PASSWORD");
	char *dir = test_mkdtemp("conf");
	char pw[512], conf[512];
	snprintf(pw, sizeof pw, "%s/pw", dir);
	snprintf(conf, sizeof conf, "%s/freshet.conf", dir);
	FILE *f = fopen(pw, "w");
	fputs("s3cret\n", f);
	fclose(f);
	f = fopen(conf, "w");
	fprintf(f,
		"; a comment\n"
		"[redis]\n"
		"url = unix:///run/redis/redis.sock?db=3\n"
		"password_file = %s\n"
		"\n"
		"[worker]\n"
		"data_dir = /srv/freshet\n"
		"analyzer_dir = /opt/analyzers\n"
		"threads = 3\n"
		"batch = 50\n"
		"commit_docs = 200   ; inline comment\n"
		"commit_ms = 250\n"
		"max_deliveries = 7\n"
		"max_interrupted = 40\n"
		"max_event_bytes = 2048\n"
		"lease_ms = 5000\n"
		"shutdown_timeout_ms = 9000\n"
		"metrics_listen = 127.0.0.1:9187\n"
		"\n"
		"[wiki enwiki]\n"
		"api = https://en.example.org/w/api.php\n"
		"language = en\n"
		"shards = 8\n"
		"namespaces = 0, 4,14\n"
		"concurrency = 16\n"
		"rate = 12.5\n"
		"user_agent_contact = ops@example.org\n"
		"[wiki dewiki]\n"
		"api = http://de.example.org/w/api.php\n"
		"language = de\n",
		pw);
	fclose(f);

	struct conf *cfg = conf_new();
	cr_assert_eq(conf_load(cfg, conf), STATUS_OK, "%s", conf_errmsg(cfg));
	cr_assert_str_eq(cfg->path, conf);
	cr_assert_null(cfg->redis_host);
	cr_assert_str_eq(cfg->redis_socket, "/run/redis/redis.sock");
	cr_assert_eq(cfg->redis_db, 3);
	cr_assert_str_eq(cfg->redis_password, "s3cret");
	cr_assert_str_eq(cfg->data_dir, "/srv/freshet");
	cr_assert_str_eq(cfg->analyzer_dir, "/opt/analyzers");
	cr_assert_eq(cfg->threads, 3);
	cr_assert_eq(cfg->batch, 50);
	cr_assert_eq(cfg->commit_docs, 200);
	cr_assert_eq(cfg->commit_ms, 250);
	cr_assert_eq(cfg->max_deliveries, 7);
	cr_assert_eq(cfg->max_interrupted, 40);
	cr_assert_eq(cfg->max_event_bytes, 2048);
	cr_assert_eq(cfg->lease_ms, 5000);
	cr_assert_eq(cfg->shutdown_timeout_ms, 9000);
	cr_assert_str_eq(cfg->metrics_host, "127.0.0.1");
	cr_assert_eq(cfg->metrics_port, 9187);
	cr_assert_eq(cfg->n_wikis, 2, "the default wiki is replaced");
	cr_assert_null(conf_wiki(cfg, CONF_DEFAULT_WIKI));
	const struct conf_wiki *w = conf_wiki(cfg, "enwiki");
	cr_assert_str_eq(w->api, "https://en.example.org/w/api.php");
	cr_assert_eq(w->shards, 8);
	cr_assert_eq(w->n_namespaces, 3);
	cr_assert(conf_wiki_indexes(w, 14));
	cr_assert_eq(w->concurrency, 16);
	cr_assert_float_eq(w->rate, 12.5, 1e-9);
	cr_assert_str_eq(w->user_agent_contact, "ops@example.org");
	w = conf_wiki(cfg, "dewiki");
	cr_assert_str_eq(w->language, "de");
	cr_assert_eq(w->shards, 4, "unset keys keep their defaults");
	conf_free(cfg);

	/* The environment wins over the password file. */
	setenv("FRESHET_REDIS_PASSWORD", "fromenv", 1);
	cfg = conf_new();
	cr_assert_eq(conf_load(cfg, conf), STATUS_OK);
	cr_assert_str_eq(cfg->redis_password, "fromenv");
	conf_free(cfg);
	unsetenv("FRESHET_REDIS_PASSWORD");
	test_rmtree(dir);
	free(dir);
}

Test(conf, redis_urls)
{
	struct conf *cfg = load("[redis]\nurl = redis://db.example:6380/2\n",
				  STATUS_OK);
	cr_assert_str_eq(cfg->redis_host, "db.example");
	cr_assert_eq(cfg->redis_port, 6380);
	cr_assert_eq(cfg->redis_db, 2);
	conf_free(cfg);
	cfg = load("[redis]\nurl = redis://localhost\n", STATUS_OK);
	cr_assert_str_eq(cfg->redis_host, "localhost");
	cr_assert_eq(cfg->redis_port, 6379);
	conf_free(cfg);
	cfg = load("[redis]\nurl = unix:///tmp/r.sock\n", STATUS_OK);
	cr_assert_str_eq(cfg->redis_socket, "/tmp/r.sock");
	cr_assert_eq(cfg->redis_db, 0);
	conf_free(cfg);
}

Test(conf, metrics_listen_bare_port_is_loopback)
{
	struct conf *cfg = load("[worker]\nmetrics_listen = 9200\n", STATUS_OK);
	cr_assert_str_eq(cfg->metrics_host, "127.0.0.1");
	cr_assert_eq(cfg->metrics_port, 9200);
	conf_free(cfg);
}

Test(conf, path_from_argument_or_environment)
{
	setenv("FRESHET_CONFIG", "/etc/env.conf", 1);
	cr_assert_str_eq(conf_path("/etc/arg.conf"), "/etc/arg.conf");
	cr_assert_str_eq(conf_path(NULL), "/etc/env.conf");
	unsetenv("FRESHET_CONFIG");
	cr_assert_null(conf_path(NULL));
}

Test(conf, missing_file_names_the_file)
{
	struct conf *cfg = conf_new();
	cr_assert_eq(conf_load(cfg, "/nonexistent/freshet.conf"), STATUS_IO);
	cr_assert_str_eq(conf_errmsg(cfg),
			 "/nonexistent/freshet.conf: cannot open: No such file or directory");
	conf_free(cfg);
}

Test(conf, unknown_key_names_its_line)
{
	expect_error("[worker]\nbatch = 10\n\n; comment\ncomit_ms = 5\n",
		     "freshet.conf:5: unknown key 'comit_ms' in [worker]");
	expect_error("[redis]\nhost = x\n",
		     "freshet.conf:2: unknown key 'host' in [redis]");
	expect_error("[wiki enwiki]\napi = http://x/api.php\nshard = 3\n",
		     "freshet.conf:3: unknown key 'shard' in [wiki enwiki]");
}

Test(conf, unknown_section_even_when_empty)
{
	expect_error("[worker]\nbatch = 10\n[workers]\n",
		     "freshet.conf:3: unknown section [workers]");
	expect_error("[wiki]\napi = http://x/\n",
		     "freshet.conf:1: [wiki] needs the wiki id: [wiki NAME]");
	expect_error("[wiki en/wiki]\n",
		     "freshet.conf:1: bad wiki id 'en/wiki' (letters, digits, '_' and '-' only)");
	expect_error("[wiki a]\n[wiki b]\n[wiki a]\n",
		     "freshet.conf:3: duplicate section [wiki a] (first on line 1)");
}

Test(conf, key_outside_section_and_syntax)
{
	expect_error("batch = 1\n", "freshet.conf:1: key 'batch' outside any section");
	expect_error("[worker]\nbatch = 1\njust words\n",
		     "freshet.conf:3: syntax error: expected '[section]' or 'key = value'");
	expect_error("[worker\n", "freshet.conf:1: section header without ']'");
}

Test(conf, bad_values_name_their_line)
{
	expect_error("[worker]\nbatch = ten\n",
		     "freshet.conf:2: bad value 'ten' for batch in [worker]: expected an integer from 1 to 100000");
	expect_error("[worker]\nthreads = -1\n",
		     "freshet.conf:2: bad value '-1' for threads in [worker]: expected an integer from 0 to 1024");
	expect_error("[worker]\ncommit_ms = 0\n",
		     "freshet.conf:2: bad value '0' for commit_ms in [worker]: expected an integer from 1 to 3600000");
	expect_error("[worker]\ndata_dir =\n",
		     "freshet.conf:2: data_dir in [worker] cannot be empty");
	expect_error("[worker]\n\nmetrics_listen = localhost:http\n",
		     "freshet.conf:3: bad value 'localhost:http' for metrics_listen in [worker]: expected host:port or port");
	expect_error("[redis]\nurl = http://127.0.0.1:6379\n",
		     "freshet.conf:2: bad url 'http://127.0.0.1:6379' in [redis]: expected redis://host[:port][/db] or unix:///path[?db=N]");
	expect_error("[redis]\nurl = redis://:pw@127.0.0.1\n",
		     "freshet.conf:2: bad url 'redis://127.0.0.1' in [redis]: no credentials in the URL: use password_file or FRESHET_REDIS_PASSWORD");
	/* The message never quotes a URL's credentials back. */
	expect_error("[wiki w]\napi = http://u:s3cret@h/w/api php\n",
		     "freshet.conf:2: bad api 'http://h/w/api php' in [wiki w]: expected an http:// or https:// URL");
	expect_error("[redis]\nurl = redis://127.0.0.1/70000\n",
		     "freshet.conf:2: bad url 'redis://127.0.0.1/70000' in [redis]: bad database number (0 to 65535)");
	expect_error("[redis]\n\nurl = unix:///run/r.sock?db=99999\n",
		     "freshet.conf:3: bad url 'unix:///run/r.sock?db=99999' in [redis]: bad database number (0 to 65535)");
	expect_error("[wiki w]\napi = http://h/w/api.php?action=query\n",
		     "freshet.conf:2: bad api 'http://h/w/api.php?action=query' in [wiki w]: no query string or fragment: give the api.php URL itself");
	expect_error("[wiki w]\napi = http://h/w/api.php#x\n",
		     "freshet.conf:2: bad api 'http://h/w/api.php#x' in [wiki w]: no query string or fragment: give the api.php URL itself");
	expect_error("[redis]\nurl = redis://127.0.0.1:99999\n",
		     "freshet.conf:2: bad url 'redis://127.0.0.1:99999' in [redis]: bad port");
	expect_error("[redis]\nurl = unix://relative.sock\n",
		     "freshet.conf:2: bad url 'unix://relative.sock' in [redis]: a unix socket URL needs an absolute path (unix:///path/redis.sock)");
	expect_error("[wiki w]\napi = file:///etc/passwd\n",
		     "freshet.conf:2: bad api 'file:///etc/passwd' in [wiki w]: expected an http:// or https:// URL");
	expect_error("[wiki w]\napi = http:///w/api.php\n",
		     "freshet.conf:2: bad api 'http:///w/api.php' in [wiki w]: expected an http:// or https:// URL");
	expect_error("[wiki w]\nlanguage = English\n",
		     "freshet.conf:2: bad language 'English' in [wiki w]: expected a MediaWiki language code such as en or zh-hans");
	expect_error("[wiki w]\nshards = 0\n",
		     "freshet.conf:2: bad value '0' for shards in [wiki w]: expected an integer from 1 to 4096");
	expect_error("[wiki w]\nnamespaces = 0,,1\n",
		     "freshet.conf:2: bad value '0,,1' for namespaces in [wiki w]: expected comma-separated namespace ids >= 0");
	expect_error("[wiki w]\nconcurrency = 0\n",
		     "freshet.conf:2: bad value '0' for concurrency in [wiki w]: expected an integer from 1 to 1024");
	expect_error("[wiki w]\nrate = fast\n",
		     "freshet.conf:2: bad value 'fast' for rate in [wiki w]: expected fetches per second (0 = unlimited)");
}

Test(conf, first_error_wins)
{
	expect_error("[worker]\nbatch = x\nthreads = y\n",
		     "freshet.conf:2: bad value 'x' for batch in [worker]: expected an integer from 1 to 100000");
}

Test(conf, unreadable_password_file)
{
	unsetenv("FRESHET_REDIS_PASSWORD");
	struct conf *cfg = conf_new();
	cr_assert_eq(conf_load_string(cfg, "freshet.conf",
					"[redis]\n\npassword_file = /nonexistent/pw\n"),
		     STATUS_IO);
	cr_assert_str_eq(conf_errmsg(cfg),
			 "freshet.conf:3: cannot read password_file '/nonexistent/pw': No such file or directory");
	conf_free(cfg);
}

Test(conf, long_line_is_an_error_not_a_truncation)
{
	char text[2048];
	int n = snprintf(text, sizeof text, "[worker]\ndata_dir = /");
	memset(text + n, 'a', 1500);
	strcpy(text + n + 1500, "\n");
	struct conf *cfg = load(text, STATUS_CONFIG);
	cr_assert(strncmp(conf_errmsg(cfg), "freshet.conf:2: line longer than", 32) == 0,
		  "%s", conf_errmsg(cfg));
	conf_free(cfg);
}

Test(conf, searchd_section)
{
	struct conf *cfg = load("", STATUS_OK);
	cr_assert_str_eq(cfg->searchd_listen, "127.0.0.1:7190");
	cr_assert_eq(cfg->searchd_port, 7190);
	cr_assert_eq(cfg->searchd_max_query_bytes, 1024);
	cr_assert_eq(cfg->searchd_max_terms, 32);
	cr_assert_eq(cfg->searchd_timeout_ms, 2000);
	cr_assert_null(cfg->searchd_token);
	cr_assert_not(cfg->searchd_allow_anonymous);
	conf_free(cfg);

	char *dir = test_mkdtemp("conf");
	char path[512], text[1024];
	snprintf(path, sizeof path, "%s/token", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("t0ken\n", f);
	fclose(f);
	snprintf(text, sizeof text,
		 "[searchd]\nlisten = [::1]:8080\nthreads = 3\nmax_query_bytes = 10\n"
		 "max_terms = 4\ntimeout_ms = 50\ntoken_file = %s\nallow_anonymous = true\n"
		 "max_connections = 9\nconnection_timeout_s = 7\nshutdown_timeout_ms = 5\n",
		 path);
	cfg = load(text, STATUS_OK);
	cr_assert_str_eq(cfg->searchd_host, "::1");
	cr_assert_eq(cfg->searchd_port, 8080);
	cr_assert_eq(cfg->searchd_threads, 3);
	cr_assert_eq(cfg->searchd_max_query_bytes, 10);
	cr_assert_eq(cfg->searchd_max_terms, 4);
	cr_assert_eq(cfg->searchd_timeout_ms, 50);
	cr_assert_str_eq(cfg->searchd_token, "t0ken");
	cr_assert(cfg->searchd_allow_anonymous);
	cr_assert_eq(cfg->searchd_max_connections, 9);
	cr_assert_eq(cfg->searchd_connection_timeout_s, 7);
	cr_assert_eq(cfg->searchd_shutdown_timeout_ms, 5);
	conf_free(cfg);
	test_rmtree(dir);
	free(dir);

	struct { const char *text, *msg; enum status st; } bad[] = {
		{ "[searchd]\nlisten = nowhere\n",
		  "freshet.conf:2: bad value 'nowhere' for listen in [searchd]", STATUS_CONFIG },
		{ "[searchd]\nmax_terms = 0\n",
		  "freshet.conf:2: bad value '0' for max_terms in [searchd]", STATUS_CONFIG },
		{ "[searchd]\nallow_anonymous = yes\n",
		  "freshet.conf:2: bad value 'yes' for allow_anonymous in [searchd]", STATUS_CONFIG },
		{ "[searchd]\ntoken_file = /nonexistent/token\n",
		  "freshet.conf:2: cannot read token_file '/nonexistent/token'", STATUS_IO },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cfg = load(bad[i].text, bad[i].st);
		cr_assert(strncmp(conf_errmsg(cfg), bad[i].msg, strlen(bad[i].msg)) == 0,
			  "message: %s", conf_errmsg(cfg));
		conf_free(cfg);
	}
}

Test(conf, saneitize_keys)
{
	struct conf *cfg = load("[wiki w]\n", STATUS_OK);
	cr_assert_float_eq(cfg->wikis[0].saneitize_days, 14, 1e-9);
	cr_assert_eq(cfg->wikis[0].saneitize_interval_s, 0);
	cr_assert_eq(cfg->wikis[0].saneitize_batch, 50);
	conf_free(cfg);
	cfg = load("[wiki w]\nsaneitize_days = 0.5\nsaneitize_interval_s = 30\n"
		   "saneitize_batch = 5\n", STATUS_OK);
	cr_assert_float_eq(cfg->wikis[0].saneitize_days, 0.5, 1e-9);
	cr_assert_eq(cfg->wikis[0].saneitize_interval_s, 30);
	cr_assert_eq(cfg->wikis[0].saneitize_batch, 5);
	conf_free(cfg);
	expect_error("[wiki w]\nsaneitize_days = -1\n",
		     "freshet.conf:2: bad value '-1' for saneitize_days in [wiki w]: expected days from 0 (off) to 3650");
	expect_error("[wiki w]\nsaneitize_batch = 51\n",
		     "freshet.conf:2: bad value '51' for saneitize_batch in [wiki w]: expected an integer from 1 to 50");
	expect_error("[wiki w]\nsaneitize_interval_s = x\n",
		     "freshet.conf:2: bad value 'x' for saneitize_interval_s in [wiki w]: expected seconds (0 = use saneitize_days)");
}

Test(conf, redis_sentinels)
{
	struct conf *cfg = load("[redis]\nsentinels = 10.0.0.1:26379, 10.0.0.2:26380\n"
				"master_name = freshet\n", STATUS_OK);
	cr_assert_str_eq(cfg->redis_sentinels, "10.0.0.1:26379, 10.0.0.2:26380");
	cr_assert_str_eq(cfg->redis_master_name, "freshet");
	conf_free(cfg);
	expect_error("[redis]\nsentinels = 10.0.0.1\nmaster_name = m\n",
		     "freshet.conf:2: bad sentinels in [redis]: sentinel '10.0.0.1' is not host:port");
	expect_error("[redis]\nsentinels = a:1,b:99999\nmaster_name = m\n",
		     "freshet.conf:2: bad sentinels in [redis]: sentinel 'b:99999' is not host:port");
	expect_error("[redis]\nurl = redis://127.0.0.1/0\nsentinels = a:1,b:2\n",
		     "freshet.conf:3: sentinels in [redis] need a master_name");
}

Test(conf, wiki_search_local_or_remote)
{
	struct conf *cfg = load("[wiki w]\nshards = 2\nsearch = remote h1:7300, h2:7301\n"
				"remote_timeout_ms = 500\n", STATUS_OK);
	cr_assert_eq(cfg->wikis[0].n_search_remotes, 2);
	cr_assert_str_eq(cfg->wikis[0].search_remotes[0], "h1:7300");
	cr_assert_str_eq(cfg->wikis[0].search_remotes[1], "h2:7301");
	cr_assert_eq(cfg->wikis[0].remote_timeout_ms, 500);
	conf_free(cfg);
	cfg = load("[wiki w]\nsearch = remote h1:7300,h2:7300,h3:7300,h4:7300\nsearch = local\n",
		   STATUS_OK);
	cr_assert_eq(cfg->wikis[0].n_search_remotes, 0);
	cr_assert_eq(cfg->wikis[0].remote_timeout_ms, 2000);
	conf_free(cfg);
	expect_error("[wiki w]\nsearch = remote h1\n",
		     "freshet.conf:2: bad value 'remote h1' for search in [wiki w]: expected local, replica or remote host:port,... (one per shard)");
	expect_error("[wiki w]\nsearch = elsewhere\n",
		     "freshet.conf:2: bad value 'elsewhere' for search in [wiki w]: expected local, replica or remote host:port,... (one per shard)");
	expect_error("[wiki w]\nsearch = remote h1:1,h2:2\nshards = 3\n",
		     "freshet.conf:2: search in [wiki w] names 2 remotes for 3 shards: give one per shard, in shard order");
}

Test(conf, replication_section)
{
	struct conf *cfg = load("[replication]\nchangesets = 200\nadvertise = 10.0.0.5:7010\n"
				"wikis = a, b\ninterval_s = 3\n\n[wiki a]\nsearch = replica\n"
				"[wiki b]\n[wiki c]\n", STATUS_OK);
	cr_assert_eq(cfg->repl_changesets, 200);
	cr_assert_str_eq(cfg->repl_advertise, "10.0.0.5:7010");
	cr_assert_eq(cfg->repl_interval_s, 3);
	cr_assert(conf_replicates(cfg, "a") && conf_replicates(cfg, "b"));
	cr_assert_not(conf_replicates(cfg, "c"));
	cr_assert(cfg->wikis[0].search_replica);
	cr_assert_not(cfg->wikis[1].search_replica);
	cr_assert_eq(cfg->wikis[0].n_search_remotes, 0);
	conf_free(cfg);
	/* Off by default: no changesets, nothing published or replicated. */
	cfg = load("[wiki w]\n", STATUS_OK);
	cr_assert_eq(cfg->repl_changesets, 0);
	cr_assert_str_eq(cfg->repl_advertise, "");
	cr_assert_eq(cfg->repl_interval_s, 1);
	cr_assert_not(conf_replicates(cfg, "w"));
	conf_free(cfg);
	expect_error("[replication]\nadvertise = 7010\n",
		     "freshet.conf:2: bad value '7010' for advertise in [replication]: expected host:port");
	expect_error("[replication]\nchangesets = -1\n",
		     "freshet.conf:2: bad value '-1' for changesets in [replication]: expected an integer from 0 to 100000");
	expect_error("[replication]\nwikis = nosuch\n[wiki w]\n",
		     "freshet.conf:2: wikis in [replication] names 'nosuch', which has no [wiki] section");
	expect_error("[replication]\nreplicas = 2\n",
		     "freshet.conf:2: unknown key 'replicas' in [replication]");
}

Test(conf, redis_stream_retention)
{
	struct conf *cfg = load("[redis]\n", STATUS_OK);
	cr_assert_eq(cfg->stream_retention_s, 604800, "the default is 7 days");
	conf_free(cfg);
	cfg = load("[redis]\nstream_retention_s = 0\n", STATUS_OK);
	cr_assert_eq(cfg->stream_retention_s, 0);
	conf_free(cfg);
	expect_error("[redis]\nstream_retention_s = 7d\n",
		     "freshet.conf:2: bad value '7d' for stream_retention_s in [redis]: expected an integer from 0 to 315360000");
}
