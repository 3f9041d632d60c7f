<?php
// SPDX-License-Identifier: MIT
/**
 * SearchClient: one GET to freshet-searchd, as MediaWiki's search backend
 * needs it.
 *
 * freshet-searchd answers JSON: a search is {"query", "total",
 * "total_relation", "shards": {"total", "ok", "failed"}, "took_ms",
 * "results": [...]}, a completion {"query", "results": [...]}, an error
 * {"error": {"code", "message"}}.  A search whose shards did not all open
 * comes with HTTP 503 *and* the usual body (shards.failed > 0): that is a
 * partial answer, not a failure, and is returned as such.
 *
 * Every call is bounded by $wgFreshetSearchTimeout (the connection by the
 * smaller of it and one second), so a service that is down or hangs costs a
 * search request at most that long and never blocks a page view or an edit
 * (nothing but search calls this).  Failures are logged on the
 * `FreshetSearch` channel and returned as a fatal Status holding an
 * i18n message; nothing here throws.
 *
 * Within one PHP request (one page view or API call) an answer is asked
 * once: Special:Search runs the same query for titles and for text, and
 * shares the answer.  After the service failed, the rest of the request
 * does not ask it again, so a hanging service costs one timeout per
 * request, not one per call.
 */

namespace MediaWiki\Extension\Freshet;

use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use Psr\Log\LoggerInterface;
use Status;
use Throwable;
use WikiMap;

class SearchClient {
	/** @var string base URL, without a trailing slash */
	private $url;
	/** @var string the wiki's name in freshet.conf */
	private $wiki;
	/** @var float seconds */
	private $timeout;
	/** @var string|null */
	private $tokenFile;
	/** @var LoggerInterface */
	private $logger;

	/** @var Status[] answers of this request, by URL */
	private static $answers = [];
	/** @var bool the service failed earlier in this request */
	private static $failed = false;

	/**
	 * Reads the settings ($wgFreshetSearchUrl, $wgFreshetSearchWiki,
	 * $wgFreshetSearchTimeout, $wgFreshetSearchTokenFile).
	 */
	public function __construct() {
		$config = MediaWikiServices::getInstance()->getMainConfig();
		$this->url = rtrim( (string)$config->get( 'FreshetSearchUrl' ), '/' );
		$wiki = $config->get( 'FreshetSearchWiki' );
		$this->wiki = ( $wiki === null || $wiki === '' ) ? WikiMap::getCurrentWikiId() : (string)$wiki;
		$this->timeout = max( 0.1, (float)$config->get( 'FreshetSearchTimeout' ) );
		$tokenFile = $config->get( 'FreshetSearchTokenFile' );
		$this->tokenFile = ( $tokenFile === null || $tokenFile === '' ) ? null : (string)$tokenFile;
		$this->logger = LoggerFactory::getInstance( 'FreshetSearch' );
	}

	/**
	 * Asks GET /v1/<wiki>/<endpoint>?<params>.  A value that is an array
	 * repeats its parameter (ns=0&ns=1).
	 *
	 * @param string $endpoint 'search' or 'complete'
	 * @param array $params
	 * @return Status good with the decoded answer (an array) as its value,
	 *  with the warning freshet-search-partial when shards failed; fatal
	 *  with freshet-search-unavailable (no usable answer) or
	 *  freshet-search-refused (the service refused the query) otherwise
	 */
	public function get( string $endpoint, array $params ): Status {
		$query = [];
		foreach ( $params as $k => $v ) {
			foreach ( (array)$v as $one ) {
				$query[] = rawurlencode( $k ) . '=' . rawurlencode( (string)$one );
			}
		}
		$url = $this->url . '/v1/' . rawurlencode( $this->wiki ) . '/' . $endpoint .
			'?' . implode( '&', $query );
		if ( isset( self::$answers[$url] ) ) {
			return self::$answers[$url];
		}
		if ( self::$failed ) {
			return Status::newFatal( 'freshet-search-unavailable' );
		}
		try {
			$status = $this->fetch( $url );
		} catch ( Throwable $e ) {
			// Search must degrade, never fatal the page that asked.
			$this->logger->error( 'freshet-searchd request failed: {exception}',
				[ 'exception' => $e, 'url' => $url ] );
			$status = Status::newFatal( 'freshet-search-unavailable' );
		}
		if ( $status->hasMessage( 'freshet-search-unavailable' ) ) {
			self::$failed = true;
		} else {
			self::$answers[$url] = $status;
		}
		return $status;
	}

	private function fetch( string $url ): Status {
		$token = null;
		if ( $this->tokenFile !== null ) {
			$token = @file_get_contents( $this->tokenFile );
			if ( $token === false || trim( $token ) === '' ) {
				$this->logger->error( 'cannot read the token file {file}',
					[ 'file' => $this->tokenFile ] );
				return Status::newFatal( 'freshet-search-unavailable' );
			}
			$token = trim( $token );
		}
		$req = MediaWikiServices::getInstance()->getHttpRequestFactory()->create( $url, [
			'method' => 'GET',
			'timeout' => $this->timeout,
			'connectTimeout' => min( $this->timeout, 1.0 ),
			'followRedirects' => false,
		], __METHOD__ );
		if ( $token !== null ) {
			$req->setHeader( 'Authorization', 'Bearer ' . $token );
		}
		$req->setHeader( 'Accept', 'application/json' );
		$started = microtime( true );
		$status = $req->execute();
		$code = $req->getStatus();
		$body = $req->getContent();
		$answer = is_string( $body ) && $body !== '' ? json_decode( $body, true ) : null;
		$ctx = [ 'url' => $url, 'status' => $code,
			'ms' => (int)round( ( microtime( true ) - $started ) * 1000 ) ];

		if ( is_array( $answer ) && isset( $answer['results'] ) && is_array( $answer['results'] ) ) {
			$good = Status::newGood( $answer );
			$failed = (int)( $answer['shards']['failed'] ?? 0 );
			if ( $failed > 0 ) {
				$this->logger->warning( 'freshet-searchd answered from part of the shards ' .
					'({failed} failed)', $ctx + [ 'failed' => $failed ] );
				$good->warning( 'freshet-search-partial', $failed,
					(int)( $answer['shards']['total'] ?? 0 ) );
			}
			return $good;
		}
		if ( is_array( $answer ) && isset( $answer['error']['code'] ) && $code >= 400 && $code < 500 &&
			$code !== 401 && $code !== 404
		) {
			// The query itself was refused (too long, too many words, bad
			// syntax): the reader can fix it, so say why.
			$this->logger->info( 'freshet-searchd refused the query: {code}',
				$ctx + [ 'code' => $answer['error']['code'] ] );
			return Status::newFatal( 'freshet-search-refused',
				\Message::plaintextParam( (string)( $answer['error']['message'] ?? '' ) ) );
		}
		if ( is_array( $answer ) && isset( $answer['error']['message'] ) ) {
			$why = (string)$answer['error']['message'];
		} elseif ( $code ) {
			$why = "HTTP $code";
		} else {
			$why = implode( '; ', array_map( static function ( array $e ): string {
				return wfMessage( $e['message'], $e['params'] )->inLanguage( 'en' )->text();
			}, $status->getErrors() ) );
		}
		$this->logger->error( 'freshet-searchd gave no answer: {why}', $ctx + [ 'why' => $why ] );
		return Status::newFatal( 'freshet-search-unavailable' );
	}
}
