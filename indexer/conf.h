/* SPDX-License-Identifier: MIT */
/*
 * conf.h: freshet.conf, the one INI file every freshet program reads.
 *
 * (The module is called conf, not config, because autoconf's generated
 * config.h sits first on the include path and would shadow a config.h.)
 *
 * Every key has a default, so a missing file is a valid configuration (the
 * quickstart runs on the defaults).  Unknown sections, unknown keys and bad
 * values are errors whose message names the file and the line:
 *
 *     freshet.conf:12: unknown key 'comit_ms' in [worker]
 *
 * The file has five kinds of section: [redis], [worker], [searchd] (the
 * search service, freshet-searchd), [replication] (shards copied between
 * hosts) and one [wiki NAME] per wiki, NAME being MediaWiki's wiki id ($wgDBname, the
 * `wiki_id` of its events).  When the file has no [wiki] section, the
 * configuration describes one wiki with the id CONF_DEFAULT_WIKI ("my_wiki",
 * the database name MediaWiki's installer proposes, so that a default
 * MediaWiki install and a default freshet agree) and the [wiki] defaults.
 *
 * A struct conf is plain data: after conf_load() returns it is never
 * changed, so any number of threads may read it at the same time.
 */
#ifndef FRESHET_CONF_H
#define FRESHET_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define CONF_DEFAULT_WIKI "my_wiki"
#define CONF_DEFAULT_REDIS_URL "redis://127.0.0.1:6379/0"
#define CONF_DEFAULT_DATA_DIR "/var/lib/freshet"
#define CONF_DEFAULT_API "http://127.0.0.1/w/api.php"

/* One [wiki NAME] section. */
struct conf_wiki {
	char *id;                 /* NAME: MediaWiki's wiki id */
	char *api;                /* Action API URL, http:// or https:// only */
	char *language;           /* content language code ["en"] */
	int shards;               /* shards = partitions of its stream [4] */
	int *namespaces;          /* namespace ids to index [{0}] */
	size_t n_namespaces;
	int concurrency;          /* fetches in flight [8] */
	double rate;              /* fetches per second [50]; 0 = unlimited */
	char *user_agent_contact; /* appended to the User-Agent [""] */
	/* The consistency loop (saneitize.h). */
	double saneitize_days;    /* one pass over the wiki per this many
	                             days [14]; 0 = off */
	int saneitize_interval_s; /* the pass's length in seconds instead,
	                             for tests [0 = saneitize_days] */
	int saneitize_batch;      /* pages checked per step [50] */
	char **search_remotes;    /* search = remote: "host:port" of the
	                             xapian-tcpsrv serving shard i [none:
	                             local] */
	size_t n_search_remotes;  /* 0 (local) or shards */
	int search_line;          /* line of the search key, 0 if none */
	int remote_timeout_ms;    /* connect and exchange bound per remote [2000] */
	bool search_replica;      /* search = replica: each shard from this
	                             host's replica of it when it has one, else
	                             from its local shard [false] */
	int line;                 /* line of its section header; 0 = default */
};

struct conf {
	char *path;               /* file read, or NULL when running on defaults */

	/* [redis] */
	char *redis_url;          /* as written ["redis://127.0.0.1:6379/0"] */
	char *redis_host;         /* parsed from redis_url: host, or NULL for unix */
	int redis_port;           /* [6379] */
	char *redis_socket;       /* unix socket path, or NULL for TCP */
	int redis_db;             /* database number [0] */
	char *redis_password_file;/* [""] */
	char *redis_password;     /* from FRESHET_REDIS_PASSWORD, else the first
	                             line of password_file, else NULL */
	char *redis_sentinels;    /* "host:port,...", or "" to use url [""] */
	char *redis_master_name;  /* the primary's name at the sentinels [""] */
	int stream_retention_s;   /* partition stream entries are kept at least
	                             this long, and until the shard and its
	                             replicas hold them; 0 = never trimmed
	                             [604800] */

	/* [worker] */
	char *data_dir;           /* ["/var/lib/freshet"] */
	char *analyzer_dir;       /* [""]: FRESHET_ANALYZER_DIR, else pkglibdir */
	int threads;              /* analysis threads; 0 = one per core [0] */
	int batch;                /* entries per XREADGROUP [100] */
	int commit_docs;          /* [1000] */
	int commit_ms;            /* [1000] */
	int max_deliveries;       /* failed attempts, then the dead-letter
	                             stream [5] */
	int max_interrupted;      /* deliveries ended by a killed worker, a lost
	                             lease or connection, then the dead-letter
	                             stream [20] */
	int max_event_bytes;      /* a larger entry is dead-lettered undecoded
	                             [65536] */
	int lease_ms;             /* [30000] */
	int shutdown_timeout_ms;  /* [30000] */
	char *metrics_listen;     /* "host:port", or "" for off [""] */
	char *metrics_host;       /* parsed: NULL when off; "127.0.0.1" if the
	                             value was a bare port */
	int metrics_port;         /* parsed; 0 when off */

	/* [searchd] (freshet-searchd) */
	char *searchd_listen;     /* as written ["127.0.0.1:7190"] */
	char *searchd_host;       /* parsed: "127.0.0.1" if a bare port */
	int searchd_port;         /* parsed [7190] */
	int searchd_threads;      /* request threads; 0 = one per core [0] */
	int searchd_max_query_bytes; /* longest q parameter [1024] */
	int searchd_max_terms;    /* most words in q [32] */
	int searchd_timeout_ms;   /* matching time of one query [2000] */
	char *searchd_token_file; /* bearer token file, "" for none [""] */
	char *searchd_token;      /* its first line, NULL when none */
	bool searchd_allow_anonymous; /* no token on a non-loopback address
	                             [false] */
	int searchd_max_connections; /* open connections at once [256] */
	int searchd_connection_timeout_s; /* idle connection closed after
	                             this many seconds [10] */
	int searchd_shutdown_timeout_ms; /* in-flight requests get this long
	                             to finish on SIGTERM [10000] */

	/* [replication] (replica.h, doc/operations.md "Replication") */
	int repl_changesets;      /* changesets a writer keeps for replicas
	                             (XAPIAN_MAX_CHANGESETS); 0 = off [0] */
	char *repl_advertise;     /* "host:port" of this host's
	                             xapian-replicate-server, published by the
	                             writer of a shard; "" = publish nothing [""] */
	char **repl_wikis;        /* wikis whose shards this host replicates
	                             when it does not write them [none] */
	size_t n_repl_wikis;
	int repl_interval_s;      /* xapian-replicate's pause between pulls [1] */

	struct conf_wiki *wikis;/* at least one */
	size_t n_wikis;

	char errmsg[512];         /* the last error, "" if none */
};

/* Returns the configuration file to read: arg if not NULL (from --config),
 * else $FRESHET_CONFIG if set and not empty, else NULL (run on defaults).
 * The result is borrowed from arg or the environment. */
const char *conf_path(const char *arg);

/* Returns a new configuration holding every default and one default wiki.
 * Never NULL (aborts on out of memory).  Free with conf_free(). */
struct conf *conf_new(void);

/* Reads the file path into cfg (which should come from conf_new()),
 * replacing defaults with the keys it sets; the first [wiki NAME] section
 * replaces the default wiki.  path NULL means no file: cfg keeps its
 * defaults, and only the environment (FRESHET_REDIS_PASSWORD) is applied.
 * Returns STATUS_OK; STATUS_IO when the file cannot be opened or the
 * password file cannot be read; STATUS_CONFIG for any unknown section, key
 * or bad value.  On failure conf_errmsg(cfg) says "<file>:<line>: what"
 * and cfg must only be freed. */
enum status conf_load(struct conf *cfg, const char *path);

/* Same as conf_load() with the file's text in memory; name is used in
 * messages in place of the path. */
enum status conf_load_string(struct conf *cfg, const char *name,
			       const char *text);

/* Returns the message of the last failure ("" if none), owned by cfg. */
const char *conf_errmsg(const struct conf *cfg);

/* Returns the wiki with this id, or NULL.  Borrowed from cfg. */
const struct conf_wiki *conf_wiki(const struct conf *cfg,
				      const char *id);

/* Returns true when [replication] wikis names wiki id. */
bool conf_replicates(const struct conf *cfg, const char *id);

/* Returns true when namespace ns is one the wiki indexes. */
bool conf_wiki_indexes(const struct conf_wiki *w, int ns);

/* Returns the analyzer directory to use: $FRESHET_ANALYZER_DIR if set, else
 * the configured analyzer_dir if not empty, else the installed pkglibdir.
 * Borrowed. */
const char *conf_analyzer_dir(const struct conf *cfg);

/* Frees cfg and everything it owns.  NULL is a no-op. */
void conf_free(struct conf *cfg);

#endif
