<?php
// SPDX-License-Identifier: MIT
/**
 * Publisher: delivers one event to its Redis stream, or to the spool file.
 *
 * An event about page P of wiki W goes to the stream freshet:{W:p<N>} with
 * N = P mod partitions, as one entry with the single field `event` (the
 * event's JSON).  The partition count is the integer at freshet:{W}:partitions;
 * when that key is absent the first producer SETNXs $wgFreshetPartitions.  A
 * stored count that differs from the configured one is logged as an error and
 * the stored count wins: the workers route by it too, so an event is never
 * sent to a partition nobody reads for that page.
 *
 * Publishing never fails an edit: when Redis cannot be reached or refuses,
 * the event is appended to the spool file as one JSON line
 * {"stream": <key>, "event": <event>} (`freshetctl spool replay FILE` sends
 * them later).  Only if the spool cannot be written either is the event lost,
 * and then it is logged with its whole JSON.
 *
 * A hanging Redis must not slow every save: after a failure, events go
 * straight to the spool for $wgFreshetRedisRetryAfter seconds without trying
 * Redis (a circuit breaker).  Its state is the time of the next attempt, in
 * a small file next to the spool (<spool>.retry-at), because PHP's worker
 * processes share no memory (APCu is per process under php -S).
 *
 * The spool lives in $wgFreshetSpoolDir (freshet-spool-<wiki>.jsonl), or is
 * the file $wgFreshetSpool names; with neither, the temporary directory is
 * used and a warning says so (a systemd PrivateTmp wipes it).  It holds IPs
 * and edit summaries, so its files are created mode 0600 (an existing one is
 * narrowed to 0600) and a symbolic link in its place is refused.  It never
 * grows past $wgFreshetSpoolMaxBytes: an event that does not fit is dropped,
 * counted in <spool>.dropped and logged with the count so far.
 *
 * Events are published after the database transaction that made the change
 * commits (onTransactionCommitOrIdle), so a consumer that fetches the page
 * right away sees the change.  A rolled-back change publishes nothing.
 *
 * One connection per PHP process is kept and reused; after any Redis error
 * it is dropped and the next event reconnects.
 */

namespace MediaWiki\Extension\Freshet;

use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use Redis;
use RuntimeException;
use Throwable;

class Publisher {
	/** @var Redis|null */
	private static $redis = null;
	/** @var int|null partition count read from Redis in this process */
	private static $partitions = null;

	/** Invalid UTF-8 (never expected from MediaWiki) must not lose an event. */
	private const JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE |
		JSON_INVALID_UTF8_SUBSTITUTE;

	/**
	 * Publishes $event about $pageId once the current primary transaction
	 * commits (or now, if none is open).
	 *
	 * @param int $pageId
	 * @param array $event
	 */
	public static function schedule( int $pageId, array $event ): void {
		$lb = MediaWikiServices::getInstance()->getDBLoadBalancer();
		$dbw = $lb->getConnectionRef( DB_PRIMARY );
		$dbw->onTransactionCommitOrIdle( static function () use ( $pageId, $event ) {
			self::publish( $pageId, $event );
		}, __METHOD__ );
	}

	/**
	 * Publishes now: XADD, or the spool when Redis fails.
	 *
	 * @param int $pageId
	 * @param array $event
	 */
	public static function publish( int $pageId, array $event ): void {
		$config = MediaWikiServices::getInstance()->getMainConfig();
		$wiki = $event['wiki_id'];
		$json = json_encode( $event, self::JSON_FLAGS );
		$stream = null;
		$path = self::spoolPath( $config, $wiki );
		$retryAt = self::retryAt( $path );
		if ( $retryAt > time() ) {
			$n = self::$partitions ?? max( 1, (int)$config->get( 'FreshetPartitions' ) );
			self::spool( $config, $path, self::streamKey( $wiki, $pageId, $n ), $event );
			return;
		}
		try {
			$redis = self::connect( $config );
			$n = self::partitions( $redis, $wiki, (int)$config->get( 'FreshetPartitions' ) );
			$stream = self::streamKey( $wiki, $pageId, $n );
			$id = $redis->xAdd( $stream, '*', [ 'event' => $json ] );
			if ( !$id ) {
				throw new RuntimeException( 'XADD failed: ' . ( $redis->getLastError() ?? 'no id' ) );
			}
			return;
		} catch ( Throwable $e ) {
			self::$redis = null;
			$after = max( 0, (int)$config->get( 'FreshetRedisRetryAfter' ) );
			if ( $after > 0 ) {
				self::setRetryAt( $path, time() + $after );
			}
			self::logger()->warning( 'Redis unavailable, spooling events for {seconds} s: {error}',
				[ 'error' => $e->getMessage(), 'seconds' => $after ] );
		}
		if ( $stream === null ) {
			$n = self::$partitions ?? max( 1, (int)$config->get( 'FreshetPartitions' ) );
			$stream = self::streamKey( $wiki, $pageId, $n );
		}
		self::spool( $config, $path, $stream, $event );
	}

	/**
	 * @param mixed $config
	 * @param string $wiki
	 * @return string the spool file of $wiki
	 */
	public static function spoolPath( $config, string $wiki ): string {
		$file = $config->get( 'FreshetSpool' );
		if ( $file !== null && $file !== '' ) {
			return (string)$file;
		}
		$dir = $config->get( 'FreshetSpoolDir' );
		if ( $dir !== null && $dir !== '' ) {
			return rtrim( (string)$dir, '/' ) . "/freshet-spool-$wiki.jsonl";
		}
		static $warned = false;
		if ( !$warned ) {
			$warned = true;
			self::logger()->warning( 'Set $wgFreshetSpoolDir: spooling to the temporary ' .
				'directory, which a service\'s PrivateTmp wipes' );
		}
		return wfTempDir() . "/freshet-spool-$wiki.jsonl";
	}

	/** The time before which Redis is not tried, 0 if none. */
	private static function retryAt( string $spool ): int {
		$v = @file_get_contents( $spool . '.retry-at' );
		return $v === false ? 0 : (int)trim( $v );
	}

	private static function setRetryAt( string $spool, int $at ): void {
		$path = $spool . '.retry-at';
		if ( is_link( $path ) ) {
			return;
		}
		$old = umask( 0077 );
		@file_put_contents( $path, "$at\n", LOCK_EX );
		umask( $old );
	}

	/**
	 * @param string $wiki
	 * @param int $pageId
	 * @param int $partitions
	 * @return string the stream key of the page's partition
	 */
	public static function streamKey( string $wiki, int $pageId, int $partitions ): string {
		return 'freshet:{' . $wiki . ':p' . ( $pageId % $partitions ) . '}';
	}

	private static function connect( $config ): Redis {
		if ( self::$redis ) {
			return self::$redis;
		}
		$server = (string)$config->get( 'FreshetRedisServer' );
		$redis = new Redis();
		$ok = ( $server !== '' && $server[0] === '/' )
			? $redis->connect( $server, 0, 1.0 )
			: $redis->connect( $server, (int)$config->get( 'FreshetRedisPort' ), 1.0 );
		if ( !$ok ) {
			throw new RuntimeException( "cannot connect to Redis at $server" );
		}
		$redis->setOption( Redis::OPT_READ_TIMEOUT, 2.0 );
		$password = $config->get( 'FreshetRedisPassword' );
		if ( $password !== null && $password !== '' && !$redis->auth( $password ) ) {
			throw new RuntimeException( 'Redis AUTH failed' );
		}
		self::$redis = $redis;
		return $redis;
	}

	private static function partitions( Redis $redis, string $wiki, int $configured ): int {
		if ( self::$partitions !== null ) {
			return self::$partitions;
		}
		$configured = max( 1, $configured );
		$key = 'freshet:{' . $wiki . '}:partitions';
		$v = $redis->get( $key );
		if ( $v === false ) {
			$redis->setnx( $key, (string)$configured );
			$v = $redis->get( $key );
		}
		$n = (int)$v;
		if ( $v === false || (string)$n !== trim( (string)$v ) || $n < 1 ) {
			throw new RuntimeException( "bad partition count '$v' at $key" );
		}
		if ( $n !== $configured ) {
			self::logger()->error( '$wgFreshetPartitions is {configured} but {key} holds {stored}; ' .
				'routing by {stored}, as the workers do', [
					'configured' => $configured, 'key' => $key, 'stored' => $n ] );
		}
		self::$partitions = $n;
		return $n;
	}

	private static function spool( $config, string $path, string $stream, array $event ): void {
		$line = json_encode( [ 'stream' => $stream, 'event' => $event ], self::JSON_FLAGS ) . "\n";
		$fh = false;
		if ( !is_link( $path ) ) {
			$old = umask( 0077 );
			$fh = @fopen( $path, 'ab' );
			umask( $old );
		}
		// One write under an exclusive lock: concurrent requests never
		// interleave their lines, and the size check holds.
		if ( !$fh || !flock( $fh, LOCK_EX ) ) {
			if ( $fh ) {
				fclose( $fh );
			}
			self::logger()->error( 'Event lost: neither Redis nor the spool {path} took it: {line}',
				[ 'path' => $path, 'line' => trim( $line ) ] );
			return;
		}
		$st = fstat( $fh );
		if ( $st && ( $st['mode'] & 0077 ) ) {
			@chmod( $path, 0600 );
		}
		$max = (int)$config->get( 'FreshetSpoolMaxBytes' );
		if ( $max > 0 && $st && $st['size'] + strlen( $line ) > $max ) {
			$dropped = self::countDropped( $path );
			flock( $fh, LOCK_UN );
			fclose( $fh );
			self::logger()->error( 'Spool {path} is full ({max} bytes): event for {stream} ' .
				'dropped, {dropped} dropped so far', [ 'path' => $path, 'max' => $max,
					'stream' => $stream, 'dropped' => $dropped ] );
			return;
		}
		$ok = fwrite( $fh, $line ) === strlen( $line ) && fflush( $fh );
		flock( $fh, LOCK_UN );
		fclose( $fh );
		if ( !$ok ) {
			self::logger()->error( 'Event lost: neither Redis nor the spool {path} took it: {line}',
				[ 'path' => $path, 'line' => trim( $line ) ] );
		}
	}

	/** Adds one to <spool>.dropped (the spool's lock is held); returns the count. */
	private static function countDropped( string $spool ): int {
		$path = $spool . '.dropped';
		if ( is_link( $path ) ) {
			return 0;
		}
		$v = @file_get_contents( $path );
		$n = ( $v === false ? 0 : (int)trim( $v ) ) + 1;
		$old = umask( 0077 );
		@file_put_contents( $path, "$n\n" );
		umask( $old );
		return $n;
	}

	private static function logger() {
		return LoggerFactory::getInstance( 'Freshet' );
	}
}
