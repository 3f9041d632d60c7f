/* mw.h: a private MediaWiki for the tests (filled in by the MediaWiki harness work). */
#ifndef FRESHET_MW_H
#define FRESHET_MW_H
#endif
