<?php
// SPDX-License-Identifier: MIT
/**
 * FreshetSearchResultSet: one page of freshet-searchd's results.
 *
 * Holds the results already built (FreshetSearchResult), the total hit
 * count freshet reported, and whether a next page exists (offset + shown <
 * total), so MediaWiki needs no over-fetch (FreshetSearchEngine is a
 * PaginatingSearchEngine).
 */

namespace MediaWiki\Extension\Freshet;

use SearchResultSet;

class FreshetSearchResultSet extends SearchResultSet {
	/** @var int|null */
	private $total;

	/**
	 * @param FreshetSearchResult[] $results
	 * @param int|null $total total hits, null if unknown
	 * @param bool $hasMore a further page exists
	 */
	public function __construct( array $results, ?int $total, bool $hasMore ) {
		parent::__construct( false, $hasMore );
		$this->results = $results;
		$this->total = $total;
	}

	public function getTotalHits() {
		return $this->total;
	}

	public function numRows() {
		return count( $this->results );
	}
}
