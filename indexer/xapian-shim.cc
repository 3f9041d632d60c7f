/* SPDX-License-Identifier: MIT */
/*
 * xapian-shim.cc: the C API of xapian-shim.h over Xapian's C++ API.
 *
 * This is freshet's only C++ file and the only one that includes
 * <xapian.h>.  Its invariant is that no exception ever crosses into C: every
 * exported function runs its body inside try and ends in the catch ladder
 * CATCH_ALL, which maps the exception class to an enum status and stores
 * the message in the handle.  Storing the message can itself run out of
 * memory; then the handle keeps a fixed message instead (set_err never
 * throws).  Strings handed to C are malloc'd so that C frees them with
 * free().
 *
 * The file is compiled with -fvisibility=hidden: only the functions marked
 * XSHIM_API in the header are exported.
 */
#include <config.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <xapian.h>

#include "xapian-shim.h"

namespace {

const char nomem_msg[] = "out of memory";

/* Stores "what: msg" in err without throwing. */
void set_err(std::string &err, const char *what, const std::string &msg) noexcept
{
	try {
		err.assign(what);
		if (!msg.empty()) {
			err.append(": ");
			err.append(msg);
		}
	} catch (...) {
		try {
			err.clear();
		} catch (...) {
		}
	}
}

char *dup_bytes(const char *p, size_t len)
{
	char *s = static_cast<char *>(std::malloc(len + 1));
	if (!s)
		throw std::bad_alloc();
	if (len)
		std::memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

char *dup_string(const std::string &v)
{
	return dup_bytes(v.data(), v.size());
}

} // namespace

struct xdb {
	std::string err;
	std::string path;
	int mode = 0; /* 0 closed, 1 writer, 2 reader */
	unsigned count = 0; /* databases in a reader set */
	bool in_txn = false;
	Xapian::WritableDatabase w;
	Xapian::Database r;

	Xapian::Database &db()
	{
		if (mode == 1)
			return w;
		return r;
	}
};

struct xdoc {
	std::string err;
	std::string term; /* scratch for prefix+term: keeps its capacity */
	Xapian::Document doc;
};

struct xquery {
	Xapian::Query q;
};

/* Snippets of texts longer than SNIPPET_WINDOW bytes are made from that
 * many bytes, starting SNIPPET_LEAD bytes before the first match. */
#define SNIPPET_WINDOW (4 * 1024)
#define SNIPPET_LEAD 1024

struct xmset {
	std::string err;
	Xapian::MSet ms;
	Xapian::Database db; /* what ms came from: lengths, data read later */
	std::vector<bool> loaded;
	std::vector<std::string> data;
	std::vector<Xapian::docid> docids;
	std::vector<double> weights;
	unsigned first = 0;
	/* The query's words as they may appear in a text: its unprefixed
	 * terms and its Z-prefixed stems without the Z, to place the
	 * snippet's window (xmset_snippet()). */
	std::vector<std::string> words;
};

/* The catch ladder every entry point ends in.  H is the std::string that
 * keeps the message; CTX is prepended (the database path). */
#define CATCH_ALL(H, CTX)                                                      \
	catch (const Xapian::DatabaseLockError &e) {                           \
		return fail(H, CTX, STATUS_LOCKED, e);                         \
	}                                                                      \
	catch (const Xapian::DatabaseCorruptError &e) {                        \
		return fail(H, CTX, STATUS_CORRUPT, e);                        \
	}                                                                      \
	catch (const Xapian::DatabaseModifiedError &e) {                       \
		return fail(H, CTX, STATUS_MODIFIED, e);                       \
	}                                                                      \
	catch (const Xapian::DatabaseVersionError &e) {                        \
		return fail(H, CTX, STATUS_VERSION, e);                        \
	}                                                                      \
	catch (const Xapian::DatabaseNotFoundError &e) {                       \
		return fail(H, CTX, STATUS_NOT_FOUND, e);                      \
	}                                                                      \
	catch (const Xapian::DatabaseOpeningError &e) {                        \
		/* Files present but unreadable as a database. */              \
		return fail(H, CTX, STATUS_CORRUPT, e);                        \
	}                                                                      \
	catch (const Xapian::InvalidArgumentError &e) {                        \
		return fail(H, CTX, STATUS_INVALID, e);                        \
	}                                                                      \
	catch (const Xapian::NetworkError &e) {                                \
		return fail(H, CTX, STATUS_TRANSIENT, e);                      \
	}                                                                      \
	catch (const Xapian::Error &e) {                                       \
		return fail(H, CTX, STATUS_XAPIAN, e);                         \
	}                                                                      \
	catch (const std::bad_alloc &) {                                       \
		set_err(H, nomem_msg, std::string());                          \
		return STATUS_NOMEM;                                           \
	}                                                                      \
	catch (const std::exception &e) {                                      \
		set_err(H, "unexpected C++ exception", e.what());              \
		return STATUS_UNKNOWN;                                         \
	}                                                                      \
	catch (...) {                                                          \
		set_err(H, "unknown exception", std::string());                \
		return STATUS_UNKNOWN;                                         \
	}

static enum status fail(std::string &err, const std::string &ctx,
			enum status st, const Xapian::Error &e) noexcept
{
	try {
		std::string msg = e.get_type();
		msg += ": ";
		msg += e.get_msg();
		if (!e.get_context().empty()) {
			msg += " (";
			msg += e.get_context();
			msg += ")";
		}
		if (e.get_error_string()) {
			msg += " (";
			msg += e.get_error_string();
			msg += ")";
		}
		set_err(err, ctx.empty() ? "xapian" : ctx.c_str(), msg);
	} catch (...) {
		set_err(err, nomem_msg, std::string());
	}
	return st;
}

static enum status invalid(std::string &err, const char *msg) noexcept
{
	set_err(err, msg, std::string());
	return STATUS_INVALID;
}

static const std::string no_ctx;

/* ------------------------------------------------------------------ xdb */

extern "C" {

struct xdb *xdb_new(void)
{
	return new (std::nothrow) xdb;
}

void xdb_free(struct xdb *db)
{
	if (!db)
		return;
	xdb_close(db);
	delete db;
}

const char *xdb_errmsg(const struct xdb *db)
{
	return db ? db->err.c_str() : "no database handle";
}

enum status xdb_open_write(struct xdb *db, const char *path, unsigned flags)
{
	if (db->mode)
		return invalid(db->err, "xdb_open_write: handle already open");
	try {
		db->err.clear();
		db->path = path;
		int f = Xapian::DB_BACKEND_GLASS;
		f |= (flags & XDB_CREATE) ? Xapian::DB_CREATE_OR_OPEN
					  : Xapian::DB_OPEN;
		if (flags & XDB_WAIT_LOCK)
			f |= Xapian::DB_RETRY_LOCK;
		db->w = Xapian::WritableDatabase(path, f);
		db->mode = 1;
		db->count = 1;
		db->in_txn = false;
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_open_read(struct xdb *db, const char *path)
{
	if (db->mode)
		return invalid(db->err, "xdb_open_read: handle already open");
	try {
		db->err.clear();
		db->path = path;
		db->r = Xapian::Database(path, Xapian::DB_BACKEND_GLASS);
		db->mode = 2;
		db->count = 1;
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_add_read(struct xdb *db, const char *path)
{
	if (db->mode != 2)
		return invalid(db->err, "xdb_add_read: handle is not an open reader");
	try {
		db->err.clear();
		Xapian::Database more(path, Xapian::DB_BACKEND_GLASS);
		db->r.add_database(more);
		db->count++;
		return STATUS_OK;
	}
	CATCH_ALL(db->err, path)
}

enum status xdb_open_remote(struct xdb *db, const char *host, unsigned port,
			    unsigned timeout_ms, unsigned connect_timeout_ms)
{
	if (db->mode)
		return invalid(db->err, "xdb_open_remote: handle already open");
	try {
		db->err.clear();
		db->path = std::string("remote ") + host + ":" + std::to_string(port);
		db->r = Xapian::Remote::open(host, port, timeout_ms, connect_timeout_ms);
		db->mode = 2;
		db->count = 1;
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_add_remote(struct xdb *db, const char *host, unsigned port,
			   unsigned timeout_ms, unsigned connect_timeout_ms)
{
	if (db->mode != 2)
		return invalid(db->err, "xdb_add_remote: handle is not an open reader");
	std::string where = std::string("remote ") + host + ":" + std::to_string(port);
	try {
		db->err.clear();
		db->r.add_database(Xapian::Remote::open(host, port, timeout_ms,
							connect_timeout_ms));
		db->count++;
		return STATUS_OK;
	}
	CATCH_ALL(db->err, where)
}

enum status xdb_reopen(struct xdb *db)
{
	if (db->mode != 2)
		return STATUS_OK;
	try {
		db->err.clear();
		db->r.reopen();
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_close(struct xdb *db)
{
	if (!db->mode)
		return STATUS_OK;
	int mode = db->mode;
	db->mode = 0;
	db->count = 0;
	try {
		if (mode == 1) {
			if (db->in_txn) {
				db->in_txn = false;
				db->w.cancel_transaction();
			}
			db->w.close();
			db->w = Xapian::WritableDatabase();
		} else {
			db->r.close();
			db->r = Xapian::Database();
		}
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_doc_count(struct xdb *db, uint64_t *count)
{
	if (!db->mode)
		return invalid(db->err, "xdb_doc_count: database not open");
	try {
		*count = db->db().get_doccount();
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_value_freq(struct xdb *db, unsigned slot, uint64_t *count)
{
	if (!db->mode)
		return invalid(db->err, "xdb_value_freq: database not open");
	try {
		*count = db->db().get_value_freq(slot);
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_revision(struct xdb *db, uint64_t *rev)
{
	if (!db->mode || db->count != 1)
		return invalid(db->err, "xdb_revision: needs one open database");
	try {
		*rev = db->db().get_revision();
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_get_metadata(struct xdb *db, const char *key, char **value)
{
	if (!db->mode)
		return invalid(db->err, "xdb_get_metadata: database not open");
	try {
		std::string v = db->db().get_metadata(key);
		if (v.empty()) {
			set_err(db->err, "no metadata", key);
			return STATUS_NOT_FOUND;
		}
		*value = dup_string(v);
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_metadata_keys(struct xdb *db, const char *prefix, xdb_key_fn fn,
			      void *ctx)
{
	if (!db->mode)
		return invalid(db->err, "xdb_metadata_keys: database not open");
	try {
		std::string p(prefix ? prefix : "");
		Xapian::Database &d = db->db();
		for (auto it = d.metadata_keys_begin(p);
		     it != d.metadata_keys_end(p); ++it) {
			std::string k = *it;
			if (fn(ctx, k.c_str()) != 0)
				break;
		}
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_set_metadata(struct xdb *db, const char *key, const char *value)
{
	if (db->mode != 1)
		return invalid(db->err, "xdb_set_metadata: database not open for writing");
	try {
		db->w.set_metadata(key, value);
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_begin(struct xdb *db)
{
	if (db->mode != 1)
		return invalid(db->err, "xdb_begin: database not open for writing");
	if (db->in_txn)
		return invalid(db->err, "xdb_begin: a transaction is already open");
	try {
		/* A flushed transaction: committing it commits the database. */
		db->w.begin_transaction(true);
		db->in_txn = true;
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_commit(struct xdb *db)
{
	if (db->mode != 1)
		return invalid(db->err, "xdb_commit: database not open for writing");
	try {
		if (db->in_txn) {
			/* Xapian cancels the transaction if this throws. */
			db->in_txn = false;
			db->w.commit_transaction();
		} else {
			db->w.commit();
		}
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_cancel(struct xdb *db)
{
	if (db->mode != 1 || !db->in_txn)
		return invalid(db->err, "xdb_cancel: no open transaction");
	try {
		db->in_txn = false;
		db->w.cancel_transaction();
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_replace(struct xdb *db, const char *unique_term,
			const struct xdoc *doc)
{
	if (db->mode != 1)
		return invalid(db->err, "xdb_replace: database not open for writing");
	try {
		db->w.replace_document(unique_term, doc->doc);
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_delete(struct xdb *db, const char *unique_term)
{
	if (db->mode != 1)
		return invalid(db->err, "xdb_delete: database not open for writing");
	try {
		if (!db->w.term_exists(unique_term)) {
			set_err(db->err, "no document with term", unique_term);
			return STATUS_NOT_FOUND;
		}
		db->w.delete_document(unique_term);
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_purge_value(struct xdb *db, unsigned slot, size_t max,
			    size_t *deleted)
{
	*deleted = 0;
	if (db->mode != 1)
		return invalid(db->err, "xdb_purge_value: database not open for writing");
	try {
		/* Collect first: deleting while walking the value stream would
		 * invalidate the iterator. */
		std::vector<Xapian::docid> ids;
		for (Xapian::ValueIterator v = db->w.valuestream_begin(slot);
		     v != db->w.valuestream_end(slot) && ids.size() < max; ++v)
			ids.push_back(v.get_docid());
		for (Xapian::docid did : ids) {
			db->w.delete_document(did);
			++*deleted;
		}
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_compact(struct xdb *db, const char *dest)
{
	if (!db->mode)
		return invalid(db->err, "xdb_compact: database not open");
	if (db->count != 1)
		return invalid(db->err, "xdb_compact: a set of databases");
	try {
		/* A reader of its own sees the last commit only, and a
		 * writer's handle is not one Xapian compacts. */
		Xapian::Database src(db->path);
		src.compact(dest, Xapian::DBCOMPACT_NO_RENUMBER);
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_get(struct xdb *db, const char *unique_term, struct xdoc **doc)
{
	if (!db->mode)
		return invalid(db->err, "xdb_get: database not open");
	xdoc *d = nullptr;
	try {
		Xapian::Database &x = db->db();
		Xapian::PostingIterator p = x.postlist_begin(unique_term);
		if (p == x.postlist_end(unique_term)) {
			set_err(db->err, "no document with term", unique_term);
			return STATUS_NOT_FOUND;
		}
		d = new xdoc;
		d->doc = x.get_document(*p);
		/* Read data and values now: the caller may keep the copy
		 * while the database changes. */
		(void)d->doc.get_data();
		(void)d->doc.values_count();
		*doc = d;
		return STATUS_OK;
	}
	catch (...) {
		delete d;
		try {
			throw;
		}
		CATCH_ALL(db->err, db->path)
	}
}

/* ------------------------------------------------------------------ xdoc */

struct xdoc *xdoc_new(void)
{
	return new (std::nothrow) xdoc;
}

void xdoc_free(struct xdoc *doc)
{
	delete doc;
}

const char *xdoc_errmsg(const struct xdoc *doc)
{
	return doc ? doc->err.c_str() : "no document handle";
}

/* Puts prefix+term in doc->term, reusing its buffer: this runs for every
 * token of every page. */
static enum status make_term(struct xdoc *doc, const char *prefix,
			     const char *term, size_t len)
{
	size_t plen = prefix ? std::strlen(prefix) : 0;
	if (len == 0)
		return invalid(doc->err, "empty term");
	if (plen + len > XDB_MAX_TERM)
		return invalid(doc->err, "term longer than 245 bytes");
	doc->term.assign(prefix ? prefix : "", plen);
	doc->term.append(term, len);
	return STATUS_OK;
}

enum status xdoc_add_posting(struct xdoc *doc, const char *prefix,
			     const char *term, size_t len, uint32_t pos,
			     uint32_t wdfinc)
{
	try {
		enum status st = make_term(doc, prefix, term, len);
		if (st != STATUS_OK)
			return st;
		doc->doc.add_posting(doc->term, pos, wdfinc);
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_add_term(struct xdoc *doc, const char *prefix,
			  const char *term, size_t len, uint32_t wdfinc)
{
	try {
		enum status st = make_term(doc, prefix, term, len);
		if (st != STATUS_OK)
			return st;
		if (wdfinc)
			doc->doc.add_term(doc->term, wdfinc);
		else
			doc->doc.add_boolean_term(doc->term);
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_set_value(struct xdoc *doc, unsigned slot, const char *value,
			   size_t len)
{
	try {
		doc->doc.add_value(slot, std::string(value, len));
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_set_value_number(struct xdoc *doc, unsigned slot, double v)
{
	try {
		doc->doc.add_value(slot, Xapian::sortable_serialise(v));
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_set_data(struct xdoc *doc, const char *data, size_t len)
{
	try {
		doc->doc.set_data(std::string(data, len));
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_get_value(const struct xdoc *cdoc, unsigned slot,
			   char **value, size_t *len)
{
	struct xdoc *doc = const_cast<struct xdoc *>(cdoc);
	try {
		std::string v = doc->doc.get_value(slot);
		*value = dup_string(v);
		*len = v.size();
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_get_value_number(const struct xdoc *cdoc, unsigned slot,
				  double *v)
{
	struct xdoc *doc = const_cast<struct xdoc *>(cdoc);
	try {
		std::string s = doc->doc.get_value(slot);
		*v = s.empty() ? 0 : Xapian::sortable_unserialise(s);
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_get_data(const struct xdoc *cdoc, char **data, size_t *len)
{
	struct xdoc *doc = const_cast<struct xdoc *>(cdoc);
	try {
		std::string v = doc->doc.get_data();
		*data = dup_string(v);
		*len = v.size();
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_term_count(const struct xdoc *cdoc, size_t *n)
{
	struct xdoc *doc = const_cast<struct xdoc *>(cdoc);
	try {
		*n = doc->doc.termlist_count();
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

enum status xdoc_terms(const struct xdoc *cdoc, xdoc_term_fn fn, void *ctx)
{
	struct xdoc *doc = const_cast<struct xdoc *>(cdoc);
	try {
		std::vector<uint32_t> pos;
		for (Xapian::TermIterator t = doc->doc.termlist_begin();
		     t != doc->doc.termlist_end(); ++t) {
			const std::string &term = *t;
			pos.clear();
			for (Xapian::PositionIterator p = t.positionlist_begin();
			     p != t.positionlist_end(); ++p)
				pos.push_back(*p);
			if (fn(ctx, term.data(), term.size(), t.get_wdf(),
			       pos.data(), pos.size()))
				break;
		}
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

namespace {

/* 64-bit FNV-1a: enough to tell two versions of one page apart. */
struct fnv {
	uint64_t h = 0xcbf29ce484222325ULL;
	void bytes(const void *p, size_t n)
	{
		const unsigned char *c = static_cast<const unsigned char *>(p);
		for (size_t i = 0; i < n; i++) {
			h ^= c[i];
			h *= 0x100000001b3ULL;
		}
	}
	void num(uint64_t v)
	{
		bytes(&v, sizeof v);
	}
	void str(const std::string &s)
	{
		num(s.size());
		bytes(s.data(), s.size());
	}
};

} // namespace

enum status xdoc_hash(const struct xdoc *cdoc, unsigned skip_slot,
		      uint64_t *hash)
{
	struct xdoc *doc = const_cast<struct xdoc *>(cdoc);
	try {
		fnv f;
		/* Lengths before contents keep the encoding unambiguous. */
		f.num(doc->doc.termlist_count());
		for (Xapian::TermIterator t = doc->doc.termlist_begin();
		     t != doc->doc.termlist_end(); ++t) {
			f.str(*t);
			f.num(t.get_wdf());
			f.num(t.positionlist_count());
			for (Xapian::PositionIterator p = t.positionlist_begin();
			     p != t.positionlist_end(); ++p)
				f.num(*p);
		}
		for (Xapian::ValueIterator v = doc->doc.values_begin();
		     v != doc->doc.values_end(); ++v) {
			if (v.get_valueno() == skip_slot)
				continue;
			f.num(v.get_valueno());
			f.str(*v);
		}
		f.str(doc->doc.get_data());
		*hash = f.h;
		return STATUS_OK;
	}
	CATCH_ALL(doc->err, no_ctx)
}

/* ---------------------------------------------------------------- xquery */

static struct xquery *wrap(Xapian::Query &&q)
{
	xquery *x = new (std::nothrow) xquery;
	if (x)
		x->q = std::move(q);
	return x;
}

struct xquery *xquery_term(const char *term, size_t len, uint32_t wqf)
{
	try {
		return wrap(Xapian::Query(std::string(term, len), wqf ? wqf : 1));
	} catch (...) {
		return nullptr;
	}
}

static struct xquery *positional(Xapian::Query::op op,
				 const char *const *terms, size_t n,
				 unsigned window)
{
	if (n == 0)
		return nullptr;
	try {
		std::vector<Xapian::Query> subs;
		subs.reserve(n);
		for (size_t i = 0; i < n; i++)
			subs.emplace_back(std::string(terms[i]));
		return wrap(Xapian::Query(op, subs.begin(), subs.end(),
					  window ? window : n));
	} catch (...) {
		return nullptr;
	}
}

struct xquery *xquery_phrase(const char *const *terms, size_t n, unsigned window)
{
	return positional(Xapian::Query::OP_PHRASE, terms, n, window);
}

struct xquery *xquery_near(const char *const *terms, size_t n, unsigned window)
{
	return positional(Xapian::Query::OP_NEAR, terms, n, window);
}

struct xquery *xquery_combine(enum xquery_op op, const struct xquery *a,
			      const struct xquery *b)
{
	try {
		if (!a && !b)
			return nullptr;
		if (!a)
			return wrap(Xapian::Query(b->q));
		if (!b)
			return wrap(Xapian::Query(a->q));
		Xapian::Query::op xop;
		switch (op) {
		case XQUERY_AND: xop = Xapian::Query::OP_AND; break;
		case XQUERY_OR: xop = Xapian::Query::OP_OR; break;
		case XQUERY_AND_NOT: xop = Xapian::Query::OP_AND_NOT; break;
		case XQUERY_FILTER: xop = Xapian::Query::OP_FILTER; break;
		case XQUERY_AND_MAYBE: xop = Xapian::Query::OP_AND_MAYBE; break;
		default: return nullptr;
		}
		return wrap(Xapian::Query(xop, a->q, b->q));
	} catch (...) {
		return nullptr;
	}
}

struct xquery *xquery_combine_n(enum xquery_op op,
				const struct xquery *const *parts, size_t n)
{
	try {
		Xapian::Query::op xop;
		switch (op) {
		case XQUERY_AND:
			xop = Xapian::Query::OP_AND;
			break;
		case XQUERY_OR:
			xop = Xapian::Query::OP_OR;
			break;
		default:
			return nullptr;
		}
		/* One constructor call over all the parts: joining them two at
		 * a time copies the growing list of subqueries at every step. */
		std::vector<Xapian::Query> subs;
		subs.reserve(n);
		for (size_t i = 0; i < n; i++)
			if (parts[i])
				subs.push_back(parts[i]->q);
		if (subs.empty())
			return nullptr;
		if (subs.size() == 1)
			return wrap(Xapian::Query(subs[0]));
		return wrap(Xapian::Query(xop, subs.begin(), subs.end()));
	} catch (...) {
		return nullptr;
	}
}

struct xquery *xquery_prefix(const char *prefix)
{
	if (!prefix || !*prefix)
		return nullptr;
	try {
		return wrap(Xapian::Query(Xapian::Query::OP_WILDCARD,
					  std::string(prefix), 0,
					  Xapian::Query::WILDCARD_LIMIT_ERROR,
					  Xapian::Query::OP_OR));
	} catch (...) {
		return nullptr;
	}
}

struct xquery *xquery_scale(const struct xquery *q, double factor)
{
	if (!q || factor < 0)
		return nullptr;
	try {
		return wrap(Xapian::Query(Xapian::Query::OP_SCALE_WEIGHT, q->q,
					  factor));
	} catch (...) {
		return nullptr;
	}
}

struct xquery *xquery_match_all(void)
{
	try {
		return wrap(Xapian::Query(Xapian::Query::MatchAll));
	} catch (...) {
		return nullptr;
	}
}

struct xquery *xquery_value_ge(unsigned slot, const char *limit, size_t len)
{
	try {
		return wrap(Xapian::Query(Xapian::Query::OP_VALUE_GE, slot,
					  std::string(limit, len)));
	} catch (...) {
		return nullptr;
	}
}

void xquery_free(struct xquery *q)
{
	delete q;
}

char *xquery_describe(const struct xquery *q)
{
	try {
		return dup_string(q->q.get_description());
	} catch (...) {
		return nullptr;
	}
}

/* ----------------------------------------------------------------- xmset */

enum status xdb_search(struct xdb *db, const struct xquery *q, unsigned offset,
		       unsigned count, struct xmset **mset)
{
	return xdb_search_opts(db, q, offset, count, nullptr, mset);
}

enum status xdb_search_opts(struct xdb *db, const struct xquery *q,
			    unsigned offset, unsigned count,
			    const struct xsearch_opts *o, struct xmset **mset)
{
	if (!db->mode)
		return invalid(db->err, "xdb_search: database not open");
	xmset *m = nullptr;
	try {
		m = new xmset;
		Xapian::Enquire enq(db->db());
		enq.set_query(q->q);
		if (o && o->time_limit_ms)
			enq.set_time_limit(o->time_limit_ms / 1000.0);
		/* Xapian 1.4's MSet::fetch() reads out of bounds on an MSet
		 * that starts past its first item: ask from the first item
		 * and skip `offset` of them (their documents are not read). */
		Xapian::doccount want = static_cast<Xapian::doccount>(offset) + count;
		m->ms = enq.get_mset(0, want, o ? o->check_at_least : 0);
		for (Xapian::TermIterator t = q->q.get_unique_terms_begin();
		     t != q->q.get_unique_terms_end(); ++t) {
			const std::string &term = *t;
			if (term.empty())
				continue;
			if (term[0] == 'Z' && term.size() > 1 &&
			    !(term[1] >= 'A' && term[1] <= 'Z'))
				m->words.push_back(term.substr(1));
			else if (!(term[0] >= 'A' && term[0] <= 'Z'))
				m->words.push_back(term);
		}
		m->first = offset;
		Xapian::MSetIterator from = m->ms.begin();
		for (unsigned k = 0; k < offset && from != m->ms.end(); k++)
			++from;
		bool data = !(o && o->no_data);
		m->db = db->db();
		if (data && from != m->ms.end())
			m->ms.fetch(from, m->ms.end());
		for (Xapian::MSetIterator i = from; i != m->ms.end(); ++i) {
			m->docids.push_back(*i);
			m->weights.push_back(i.get_weight());
			m->data.push_back(data ? i.get_document().get_data() : std::string());
			m->loaded.push_back(data);
		}
		*mset = m;
		return STATUS_OK;
	}
	catch (...) {
		delete m;
		try {
			throw;
		}
		CATCH_ALL(db->err, db->path)
	}
}

void xmset_free(struct xmset *mset)
{
	delete mset;
}

const char *xmset_errmsg(const struct xmset *mset)
{
	return mset ? mset->err.c_str() : "no result handle";
}

size_t xmset_size(const struct xmset *mset)
{
	return mset->docids.size();
}

uint64_t xmset_estimate(const struct xmset *mset)
{
	return mset->ms.get_matches_estimated();
}

void xmset_bounds(const struct xmset *mset, uint64_t *lower, uint64_t *upper)
{
	*lower = mset->ms.get_matches_lower_bound();
	*upper = mset->ms.get_matches_upper_bound();
}

enum status xdb_terms(struct xdb *db, const char *prefix, size_t max,
		      xdb_term_fn fn, void *ctx)
{
	return xdb_terms_after(db, prefix, NULL, max, fn, ctx);
}

enum status xdb_terms_after(struct xdb *db, const char *prefix, const char *after,
			    size_t max, xdb_term_fn fn, void *ctx)
{
	if (!db->mode)
		return invalid(db->err, "xdb_terms: database not open");
	try {
		db->err.clear();
		std::string p(prefix ? prefix : "");
		Xapian::Database &d = db->db();
		size_t n = 0;
		Xapian::TermIterator t = d.allterms_begin(p);
		if (after && *after) {
			/* skip_to() stops at the first term >= after. */
			t.skip_to(after);
			if (t != d.allterms_end(p) && *t == after)
				++t;
		}
		for (; t != d.allterms_end(p); ++t) {
			if (max && n++ == max)
				break;
			std::string term = *t;
			if (fn(ctx, term.data(), term.size(), t.get_termfreq()))
				break;
		}
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_postings(struct xdb *db, const char *prefix, size_t max,
			 xdb_posting_fn fn, void *ctx)
{
	if (!db->mode)
		return invalid(db->err, "xdb_postings: database not open");
	try {
		db->err.clear();
		std::string p(prefix ? prefix : "");
		Xapian::Database &d = db->db();
		size_t n = 0;
		for (Xapian::TermIterator t = d.allterms_begin(p);
		     t != d.allterms_end(p); ++t) {
			if (max && n++ == max)
				break;
			std::string term = *t;
			for (Xapian::PostingIterator i = d.postlist_begin(term);
			     i != d.postlist_end(term); ++i)
				if (fn(ctx, term.data(), term.size(), *i,
				       i.get_doclength()))
					return STATUS_OK;
		}
		return STATUS_OK;
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_doc_value(struct xdb *db, uint32_t docid, unsigned slot,
			  char **value, size_t *len)
{
	if (!db->mode)
		return invalid(db->err, "xdb_doc_value: database not open");
	try {
		/* The docid comes from a posting list: skip the existence
		 * check, a value read is then one lookup. */
		std::string v = db->db().get_document(docid,
						      Xapian::DOC_ASSUME_VALID)
					.get_value(slot);
		*value = dup_string(v);
		*len = v.size();
		return STATUS_OK;
	} catch (const Xapian::DocNotFoundError &e) {
		return fail(db->err, db->path, STATUS_NOT_FOUND, e);
	}
	CATCH_ALL(db->err, db->path)
}

enum status xdb_doc_data(struct xdb *db, uint32_t docid, char **data,
			 size_t *len)
{
	if (!db->mode)
		return invalid(db->err, "xdb_doc_data: database not open");
	try {
		std::string v = db->db().get_document(docid).get_data();
		*data = dup_string(v);
		*len = v.size();
		return STATUS_OK;
	} catch (const Xapian::DocNotFoundError &e) {
		return fail(db->err, db->path, STATUS_NOT_FOUND, e);
	}
	CATCH_ALL(db->err, db->path)
}

enum status xmset_hit(const struct xmset *mset, size_t i, struct xmset_hit *hit)
{
	if (i >= mset->docids.size())
		return invalid(const_cast<xmset *>(mset)->err,
			       "xmset_hit: index out of range");
	hit->docid = mset->docids[i];
	hit->rank = mset->first + static_cast<unsigned>(i);
	hit->weight = mset->weights[i];
	hit->data = mset->data[i].c_str();
	hit->data_len = mset->data[i].size();
	return STATUS_OK;
}

enum status xmset_doclength(struct xmset *mset, size_t i, uint64_t *len)
{
	if (i >= mset->docids.size())
		return invalid(mset->err, "xmset_doclength: index out of range");
	try {
		*len = mset->db.get_doclength(mset->docids[i]);
		return STATUS_OK;
	}
	CATCH_ALL(mset->err, no_ctx)
}

enum status xmset_load_data(struct xmset *mset, size_t i)
{
	if (i >= mset->docids.size())
		return invalid(mset->err, "xmset_load_data: index out of range");
	if (mset->loaded[i])
		return STATUS_OK;
	try {
		mset->data[i] = mset->db.get_document(mset->docids[i]).get_data();
		mset->loaded[i] = true;
		return STATUS_OK;
	}
	CATCH_ALL(mset->err, no_ctx)
}

/* Where the snippet window of a long text starts: a little before the
 * first place one of the query's words appears (ASCII letters compared
 * without case), else at the start.  A word found only through its stem
 * or in another case outside ASCII is not seen: the window then starts
 * at the start, as the snippet of a text shorter than the window would
 * show. */
static size_t window_start(const std::vector<std::string> &words,
			   const char *text, size_t len)
{
	std::string low(text, len);
	for (char &c : low)
		if (c >= 'A' && c <= 'Z')
			c = static_cast<char>(c - 'A' + 'a');
	size_t first = std::string::npos;
	for (const std::string &w : words) {
		size_t at = low.find(w);
		if (at < first)
			first = at;
	}
	if (first == std::string::npos || first < SNIPPET_LEAD)
		return 0;
	size_t at = first - SNIPPET_LEAD;
	/* To the start of a character. */
	while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80)
		at--;
	return at;
}

/* Cuts n back to the start of a character of text. */
static size_t char_cut(const char *text, size_t n)
{
	while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
		n--;
	return n;
}

enum status xmset_snippet(struct xmset *mset, const char *text, size_t text_len,
			  size_t max_len, const char *stem_lang,
			  const char *hi_start, const char *hi_end, char **out)
{
	try {
		Xapian::Stem stem;
		if (stem_lang && *stem_lang)
			stem = Xapian::Stem(stem_lang);
		/* A long text is cut to a window around the first place the
		 * query's words appear: Xapian's snippet generator analyses
		 * all the text it is given, and pages of tens of kilobytes
		 * made that the largest cost of a search. */
		size_t from = 0, n = text_len;
		if (text_len > SNIPPET_WINDOW) {
			from = window_start(mset->words, text, text_len);
			n = text_len - from < SNIPPET_WINDOW
				    ? text_len - from
				    : char_cut(text + from, SNIPPET_WINDOW);
		}
		std::string s = mset->ms.snippet(
			std::string(text + from, n), max_len, stem,
			/* Neither SNIPPET_BACKGROUND_MODEL (a term-frequency
			 * lookup in every shard for each distinct word of the
			 * text) nor SNIPPET_EXHAUSTIVE (every window of the
			 * whole text scored): on pages of tens of kilobytes
			 * they made the snippets, not the search, the cost of
			 * a query. */
			0, hi_start ? hi_start : "", hi_end ? hi_end : "",
			"...");
		/* Text left out before the window is omitted text too. */
		if (from > 0 && s.compare(0, 3, "...") != 0)
			s.insert(0, "...");
		*out = dup_string(s);
		return STATUS_OK;
	}
	CATCH_ALL(mset->err, no_ctx)
}

} /* extern "C" */
