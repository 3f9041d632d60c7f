<?php
// SPDX-License-Identifier: MIT
/**
 * FreshetSearchResult: one hit of freshet-searchd, built from its JSON only.
 *
 * MediaWiki's RevisionSearchResult loads each hit's revision (and text) from
 * the database; this one answers every getter from the hit freshet gave
 * (title, snippets, redirect, size, word count, timestamp), so a page of
 * results costs no database query per hit.  The page id is set on the
 * Title, so MediaWiki does not look it up either.  Snippets are sanitized
 * (Snippet::sanitize) once, here.
 */

namespace MediaWiki\Extension\Freshet;

use SearchResult;
use Title;

class FreshetSearchResult extends SearchResult {
	/** @var string */
	private $snippet;
	/** @var string */
	private $titleSnippet;
	/** @var Title|null */
	private $redirectTitle;
	/** @var string|null MediaWiki (TS_MW) timestamp */
	private $timestamp;
	/** @var int|null */
	private $size;
	/** @var int */
	private $wordCount;

	/**
	 * @param Title $title the page, its id already set
	 * @param array $hit one element of freshet-searchd's "results"
	 */
	public function __construct( Title $title, array $hit ) {
		parent::__construct();
		$this->mTitle = $title;
		$this->snippet = Snippet::sanitize( $hit['snippet'] ?? '' );
		$this->titleSnippet = Snippet::sanitize( $hit['title_snippet'] ?? '' );
		$rt = $hit['redirect_title'] ?? null;
		$this->redirectTitle = is_string( $rt ) && $rt !== '' ? Title::newFromText( $rt ) : null;
		$ts = $hit['timestamp'] ?? null;
		$this->timestamp = is_string( $ts ) ? ( wfTimestamp( TS_MW, $ts ) ?: null ) : null;
		$this->size = isset( $hit['size'] ) ? (int)$hit['size'] : null;
		$this->wordCount = (int)( $hit['word_count'] ?? 0 );
	}

	/**
	 * Builds a result from a hit; null when the hit names no valid title.
	 *
	 * @param array $hit
	 * @return self|null
	 */
	public static function fromHit( array $hit ): ?self {
		$title = self::titleOf( $hit );
		return $title ? new self( $title, $hit ) : null;
	}

	/**
	 * The Title of a hit (search or completion), with its page id set.
	 *
	 * @param array $hit
	 * @return Title|null
	 */
	public static function titleOf( array $hit ): ?Title {
		if ( !isset( $hit['title'] ) || !is_string( $hit['title'] ) ) {
			return null;
		}
		$title = Title::newFromText( $hit['title'] );
		if ( !$title ) {
			return null;
		}
		if ( isset( $hit['page_id'] ) && (int)$hit['page_id'] > 0 ) {
			$title->resetArticleID( (int)$hit['page_id'] );
		}
		return $title;
	}

	public function isBrokenTitle() {
		return $this->mTitle === null;
	}

	/** The index is the truth here: a hit names a page that exists. */
	public function isMissingRevision() {
		return false;
	}

	public function getTextSnippet( $terms = [] ) {
		return $this->snippet;
	}

	public function getTitleSnippet() {
		return $this->titleSnippet;
	}

	public function getRedirectTitle() {
		return $this->redirectTitle;
	}

	public function getRedirectSnippet() {
		return $this->redirectTitle ? htmlspecialchars( $this->redirectTitle->getPrefixedText() ) : '';
	}

	public function getTimestamp() {
		return $this->timestamp;
	}

	public function getWordCount() {
		return $this->wordCount;
	}

	public function getByteSize() {
		return $this->size;
	}

	public function getFile() {
		return null;
	}
}
