<?php
// SPDX-License-Identifier: MIT
/**
 * FreshetSearchEngine: MediaWiki's search answered by freshet-searchd.
 *
 * Registered as the search type `freshet` (extension.json's
 * SearchMappings): with $wgSearchType = 'freshet' it answers
 * Special:Search, the Action API's list=search and action=opensearch, and
 * REST's /v1/search/page and /v1/search/title; listed in
 * $wgSearchTypeAlternatives, it answers the requests that ask for it
 * (srbackend=freshet).
 *
 * - Full text (doSearchText): GET /v1/<wiki>/search with the query, the
 *   namespaces, limit and offset.  Results are built from the JSON alone.
 * - Titles (doSearchTitle): none of their own; a title match is part of
 *   every full text search (see doSearchTitle).
 * - Completion (completionSearchBackend): GET /v1/<wiki>/complete, titles
 *   beginning with the text, ignoring case and accents.
 *
 * Failures never fatal a page: a text search returns a fatal Status with
 * an i18n message (Special:Search shows it in an error box, the API as an
 * error), a title search returns null (no title section), a completion
 * returns no suggestions.  An answer from part of the shards is shown
 * with the warning freshet-search-partial.
 */

namespace MediaWiki\Extension\Freshet;

use PaginatingSearchEngine;
use SearchEngine;
use SearchSuggestion;
use SearchSuggestionSet;
use Status;

class FreshetSearchEngine extends SearchEngine implements PaginatingSearchEngine {
	/** freshet-searchd's bounds on limit and offset. */
	private const MAX_LIMIT = 100;
	private const MAX_COMPLETE = 50;
	private const MAX_OFFSET = 100000;

	/** @var SearchClient|null */
	private $client = null;

	private function client(): SearchClient {
		if ( $this->client === null ) {
			$this->client = new SearchClient();
		}
		return $this->client;
	}

	/**
	 * The ns parameter: the namespaces asked for, or none (every namespace).
	 *
	 * @return int[]
	 */
	private function namespaceParam(): array {
		return is_array( $this->namespaces ) ? array_values( array_map( 'intval', $this->namespaces ) ) : [];
	}

	/**
	 * Runs a search for $term with the engine's namespaces, limit and offset.
	 *
	 * @param string $term
	 * @return Status good with freshet's answer, fatal on failure
	 */
	private function search( string $term ): Status {
		$term = trim( $term );
		if ( $term === '' ) {
			return Status::newGood( [ 'total' => 0, 'results' => [] ] );
		}
		if ( $this->offset > self::MAX_OFFSET ) {
			return Status::newGood( [ 'total' => null, 'results' => [] ] );
		}
		return $this->client()->get( 'search', [
			'q' => $term,
			'ns' => $this->namespaceParam(),
			'limit' => max( 1, min( self::MAX_LIMIT, (int)$this->limit ) ),
			'offset' => max( 0, (int)$this->offset ),
		] );
	}

	/**
	 * Builds the result set of an answer.
	 *
	 * @param Status $status good, with freshet's answer as value
	 * @return FreshetSearchResultSet
	 */
	private function resultSet( Status $status ): FreshetSearchResultSet {
		$answer = $status->getValue();
		$results = [];
		foreach ( $answer['results'] as $hit ) {
			if ( !is_array( $hit ) ) {
				continue;
			}
			$r = FreshetSearchResult::fromHit( $hit );
			if ( $r ) {
				$results[] = $r;
			}
		}
		$total = isset( $answer['total'] ) ? (int)$answer['total'] : null;
		$hasMore = $total !== null && (int)$this->offset + count( $answer['results'] ) < $total;
		return new FreshetSearchResultSet( $results, $total, $hasMore );
	}

	/**
	 * @param string $term
	 * @return Status good with a FreshetSearchResultSet (and the warning
	 *  freshet-search-partial when shards failed), or fatal
	 */
	protected function doSearchText( $term ) {
		$status = $this->search( (string)$term );
		if ( !$status->isOK() ) {
			return $status;
		}
		$set = $this->resultSet( $status );
		$out = Status::newGood( $set );
		$out->merge( $status );
		$out->setResult( true, $set );
		return $out;
	}

	/**
	 * No separate title search: titles are part of every full text
	 * search, and weigh more there (as with CirrusSearch).  A result set
	 * here would be wrong twice: list=search without srwhat asks for
	 * titles first and answers with them when it gets any, so it would
	 * lose the text matches, and Special:Search would list each page that
	 * matched in its title twice.  null makes both use doSearchText.
	 *
	 * @param string $term
	 * @return null
	 */
	protected function doSearchTitle( $term ) {
		return null;
	}

	/**
	 * @param string $search the text, its namespace prefix already taken
	 *  off into $this->namespaces
	 * @return SearchSuggestionSet empty when freshet did not answer
	 */
	protected function completionSearchBackend( $search ) {
		$search = trim( (string)$search );
		if ( $search === '' ) {
			return SearchSuggestionSet::emptySuggestionSet();
		}
		$status = $this->client()->get( 'complete', [
			'q' => $search,
			'ns' => $this->namespaceParam(),
			'limit' => max( 1, min( self::MAX_COMPLETE, (int)$this->limit ) ),
		] );
		if ( !$status->isOK() ) {
			return SearchSuggestionSet::emptySuggestionSet();
		}
		$suggestions = [];
		$hits = $status->getValue()['results'];
		$score = count( $hits );
		foreach ( $hits as $hit ) {
			$title = is_array( $hit ) ? FreshetSearchResult::titleOf( $hit ) : null;
			if ( $title ) {
				$suggestions[] = new SearchSuggestion( $score--, $title->getPrefixedText(), $title,
					$title->getArticleID() );
			}
		}
		return new SearchSuggestionSet( $suggestions,
			count( $hits ) >= max( 1, min( self::MAX_COMPLETE, (int)$this->limit ) ) );
	}
}
