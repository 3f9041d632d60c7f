/* SPDX-License-Identifier: MIT */
/*
 * bench-shard-direct.cc: the writes of bench-shard.c's "shim" method done
 * straight on Xapian in C++, term for term, so that the difference between
 * the two is what the shim costs.  Compiled only into the benchmark.
 */
#include <config.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>

#include <xapian.h>

#include "bench-shard.h"

static double now()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void build_doc(Xapian::Document &doc, const bench_doc &b, std::string &q)
{
	char tmp[32];
	std::snprintf(tmp, sizeof tmp, "Q%" PRIu64, b.page);
	q = tmp;
	doc.add_boolean_term(q);
	std::string t;
	for (size_t i = 0; i < b.ntitle; i++) {
		t.assign("S").append(b.title[i].s, b.title[i].len);
		doc.add_posting(t, (Xapian::termpos)i + 1);
		t.assign("ZS").append(b.title[i].s, b.title[i].stem_len);
		doc.add_term(t);
	}
	for (size_t i = 0; i < b.nbody; i++) {
		t.assign(b.body[i].s, b.body[i].len);
		doc.add_posting(t, (Xapian::termpos)i + 1);
		t.assign("Z").append(b.body[i].s, b.body[i].stem_len);
		doc.add_term(t);
	}
	doc.add_boolean_term("XNS0");
	doc.add_boolean_term("Len");
	doc.add_boolean_term("XCbench");
	doc.add_value(0, Xapian::sortable_serialise((double)b.rev));
	doc.add_value(1, Xapian::sortable_serialise(1700000000.0 + (double)b.rev));
	doc.add_value(2, Xapian::sortable_serialise(0));
	char fp[17];
	std::snprintf(fp, sizeof fp, "%016" PRIx64, mix(b.page ^ b.rev));
	doc.add_value(3, std::string(fp, 16));
	doc.set_data(std::string(b.data, b.data_len));
}

static double write(const char *path, const uint64_t *pages,
		    uint64_t first_page, size_t n, uint64_t rev, unsigned batch,
		    bool create, double *cpu)
{
	try {
		Xapian::WritableDatabase db(path, (create ? Xapian::DB_CREATE_OR_OPEN
							  : Xapian::DB_OPEN) |
							 Xapian::DB_BACKEND_GLASS);
		bench_doc *b = new bench_doc;
		std::string q;
		double t0 = now(), c0 = bench_cpu_now();
		for (size_t i = 0; i < n; i++) {
			uint64_t page = pages ? pages[i] : first_page + i;
			bench_make_doc(b, page, rev);
			Xapian::Document doc;
			build_doc(doc, *b, q);
			db.replace_document(q, doc);
			if ((i + 1) % batch == 0 || i + 1 == n) {
				char pos[32];
				std::snprintf(pos, sizeof pos, "%zu-0", i);
				db.set_metadata("freshet.position.bench", pos);
				db.commit();
			}
		}
		double t = now() - t0;
		*cpu = bench_cpu_now() - c0;
		delete b;
		db.close();
		return t;
	} catch (const Xapian::Error &e) {
		std::fprintf(stderr, "bench-shard (direct): %s\n",
			     e.get_description().c_str());
		return -1;
	}
}

extern "C" double direct_build(const char *path, uint64_t first_page,
			       uint64_t docs, unsigned batch, double *cpu)
{
	return write(path, nullptr, first_page, docs, 1, batch, true, cpu);
}

extern "C" double direct_replace(const char *path, const uint64_t *pages,
				 size_t n, uint64_t rev, unsigned batch,
				 double *cpu)
{
	return write(path, pages, 0, n, rev, batch, false, cpu);
}

extern "C" double direct_build_docs(uint64_t first_page, uint64_t docs)
{
	bench_doc *b = new bench_doc;
	std::string q;
	double c0 = bench_cpu_now();
	for (uint64_t i = 0; i < docs; i++) {
		bench_make_doc(b, first_page + i, 1);
		Xapian::Document doc;
		build_doc(doc, *b, q);
	}
	double c = bench_cpu_now() - c0;
	delete b;
	return c;
}
