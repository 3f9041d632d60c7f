<?php
// SPDX-License-Identifier: MIT
/**
 * EventFactory: builds mediawiki/page/change 1.2.0 and
 * mediawiki/cirrussearch/page_rerender 1.0.0 events as Wikimedia's EventBus
 * does, with the fields freshet's event decoder (queues/event.c) reads:
 * page.page_id, page.page_title as the prefixed DB key with underscores,
 * page.namespace_id, revision.rev_id for every kind but delete,
 * prior_state for undelete and move, created_redirect_page.  doc/queues.md
 * describes the event format freshet accepts.
 *
 * Every method returns a plain array ready for json_encode; nothing here
 * touches Redis.
 */

namespace MediaWiki\Extension\Freshet;

use MediaWiki\MediaWikiServices;
use MediaWiki\Revision\RevisionRecord;
use MediaWiki\Revision\SlotRecord;
use MediaWiki\User\UserIdentity;
use Title;
use WebRequest;
use WikiMap;

class EventFactory {
	public const PAGE_CHANGE_SCHEMA = '/mediawiki/page/change/1.2.0';
	public const PAGE_CHANGE_STREAM = 'mediawiki.page_change.v1';
	public const RERENDER_SCHEMA = '/mediawiki/cirrussearch/page_rerender/1.0.0';
	public const RERENDER_STREAM = 'mediawiki.cirrussearch.page_rerender.v1';

	/** The changelog kind of each page change kind, as EventBus maps them. */
	private const CHANGELOG = [
		'create' => 'insert',
		'edit' => 'update',
		'move' => 'update',
		'visibility_change' => 'update',
		'delete' => 'delete',
		'undelete' => 'insert',
	];

	/** @return string this wiki's id (database name and prefix) */
	public static function wikiId(): string {
		return WikiMap::getCurrentWikiId();
	}

	/** @return string an ISO 8601 UTC time for a MediaWiki timestamp (now if null) */
	public static function isoTime( $ts = null ): string {
		return wfTimestamp( TS_ISO_8601, $ts ?? wfTimestampNow() );
	}

	private static function meta( string $stream, Title $title ): array {
		$config = MediaWikiServices::getInstance()->getMainConfig();
		$host = parse_url( $config->get( 'CanonicalServer' ), PHP_URL_HOST ) ?: 'localhost';
		return [
			'stream' => $stream,
			'domain' => $host,
			'dt' => self::isoTime(),
			'id' => self::uuid(),
			'request_id' => WebRequest::getRequestId(),
			'uri' => $title->getCanonicalURL(),
		];
	}

	private static function uuid(): string {
		$b = random_bytes( 16 );
		$b[6] = chr( ( ord( $b[6] ) & 0x0f ) | 0x40 );
		$b[8] = chr( ( ord( $b[8] ) & 0x3f ) | 0x80 );
		return vsprintf( '%s%s-%s-%s-%s-%s%s%s', str_split( bin2hex( $b ), 4 ) );
	}

	/**
	 * The page entity.
	 *
	 * @param Title $title
	 * @param int $pageId
	 * @param bool $isRedirect
	 * @param Title|null $target redirect target, for redirect_page_link
	 * @return array
	 */
	public static function page( Title $title, int $pageId, bool $isRedirect,
		?Title $target = null
	): array {
		$page = [
			'page_id' => $pageId,
			'page_title' => $title->getPrefixedDBkey(),
			'namespace_id' => $title->getNamespace(),
			'is_redirect' => $isRedirect,
		];
		if ( $isRedirect && $target && !$target->isExternal() ) {
			$link = [
				'page_title' => $target->getPrefixedDBkey(),
				'namespace_id' => $target->getNamespace(),
			];
			$id = $target->getArticleID();
			if ( $id > 0 ) {
				$link['page_id'] = $id;
			}
			$page['redirect_page_link'] = $link;
		}
		return $page;
	}

	/**
	 * The page entity of a saved revision's page, redirect state taken
	 * from the revision's main content.
	 */
	public static function pageOfRevision( Title $title, int $pageId, RevisionRecord $rev ): array {
		$content = $rev->getContent( SlotRecord::MAIN, RevisionRecord::RAW );
		$target = $content ? $content->getRedirectTarget() : null;
		return self::page( $title, $pageId, $target !== null,
			$target ? Title::newFromLinkTarget( $target ) : null );
	}

	/** @return array the user entity */
	public static function user( ?UserIdentity $user ): ?array {
		if ( !$user ) {
			return null;
		}
		return [ 'user_id' => $user->getId(), 'user_text' => $user->getName() ];
	}

	/**
	 * The revision entity.  $withContent false leaves out everything but
	 * the ids and time (suppressed deletes).
	 */
	public static function revision( RevisionRecord $rev, bool $withContent = true ): array {
		$r = [
			'rev_id' => $rev->getId(),
			'rev_dt' => self::isoTime( $rev->getTimestamp() ),
		];
		if ( $rev->getParentId() ) {
			$r['rev_parent_id'] = $rev->getParentId();
		}
		if ( !$withContent ) {
			return $r;
		}
		$r['is_minor_edit'] = $rev->isMinor();
		$r['is_content_visible'] = !$rev->isDeleted( RevisionRecord::DELETED_TEXT );
		$r['is_editor_visible'] = !$rev->isDeleted( RevisionRecord::DELETED_USER );
		$r['is_comment_visible'] = !$rev->isDeleted( RevisionRecord::DELETED_COMMENT );
		if ( $r['is_comment_visible'] ) {
			$comment = $rev->getComment( RevisionRecord::RAW );
			$r['comment'] = $comment ? $comment->text : '';
		}
		if ( $r['is_editor_visible'] ) {
			$editor = self::user( $rev->getUser( RevisionRecord::RAW ) );
			if ( $editor ) {
				$r['editor'] = $editor;
			}
		}
		if ( $r['is_content_visible'] ) {
			$r['rev_size'] = $rev->getSize();
			$r['rev_sha1'] = $rev->getSha1();
			$slots = [];
			$handlers = MediaWikiServices::getInstance()->getContentHandlerFactory();
			foreach ( $rev->getSlots()->getSlots() as $role => $slot ) {
				$model = $slot->getModel();
				$format = $slot->getFormat();
				if ( $format === null && $handlers->isDefinedModel( $model ) ) {
					$format = $handlers->getContentHandler( $model )->getDefaultFormat();
				}
				$slots[$role] = [
					'slot_role' => $role,
					'content_model' => $model,
					'content_format' => $format,
					'content_sha1' => $slot->getSha1(),
					'content_size' => $slot->getSize(),
					'origin_rev_id' => $slot->getOrigin(),
				];
			}
			$r['content_slots'] = $slots;
		}
		return $r;
	}

	/**
	 * A mediawiki/page/change event.
	 *
	 * @param string $kind create, edit, move, delete, undelete, visibility_change
	 * @param Title $title the page's title (after the change)
	 * @param array $page the page entity
	 * @param string $dt when the change happened (ISO 8601)
	 * @param UserIdentity|null $performer who made the change
	 * @param array|null $revision the revision entity
	 * @param string|null $comment the change's comment
	 * @return array
	 */
	public static function pageChange( string $kind, Title $title, array $page, string $dt,
		?UserIdentity $performer, ?array $revision, ?string $comment = null
	): array {
		$e = [
			'$schema' => self::PAGE_CHANGE_SCHEMA,
			'meta' => self::meta( self::PAGE_CHANGE_STREAM, $title ),
			'dt' => $dt,
			'wiki_id' => self::wikiId(),
			'page_change_kind' => $kind,
			'changelog_kind' => self::CHANGELOG[$kind],
			'page' => $page,
		];
		if ( $performer ) {
			$e['performer'] = self::user( $performer );
		}
		if ( $comment !== null ) {
			$e['comment'] = $comment;
		}
		if ( $revision !== null ) {
			$e['revision'] = $revision;
		}
		return $e;
	}

	/**
	 * A mediawiki/cirrussearch/page_rerender event: the page's rendering
	 * changed without a new revision (a transcluded page changed).
	 */
	public static function rerender( Title $title, int $pageId, bool $isRedirect,
		string $reason
	): array {
		return [
			'$schema' => self::RERENDER_SCHEMA,
			'meta' => self::meta( self::RERENDER_STREAM, $title ),
			'dt' => self::isoTime(),
			'wiki_id' => self::wikiId(),
			'page_id' => $pageId,
			'page_title' => $title->getPrefixedDBkey(),
			'namespace_id' => $title->getNamespace(),
			'is_redirect' => $isRedirect,
			'reason' => $reason,
		];
	}
}
