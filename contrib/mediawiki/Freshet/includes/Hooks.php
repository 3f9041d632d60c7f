<?php
// SPDX-License-Identifier: MIT
/**
 * Hooks: turns MediaWiki 1.39's page lifecycle hooks into freshet events.
 *
 *   PageSaveComplete    -> create or edit (null edits publish nothing,
 *                          not even a rerender); a
 *                          move that leaves a redirect saves the redirect
 *                          through here too, so it becomes a create
 *   PageDeleteComplete  -> delete (a suppressed delete carries no content,
 *                          and is followed by a visibility_change)
 *   ArticleRevisionVisibilitySet -> visibility_change, when revisions of a
 *                          page were hidden or shown (revision deletion,
 *                          suppression): the worker then removes what the
 *                          hidden text left in the shard's files
 *   ArticleUndelete     -> undelete, prior_state.page.page_id = the archived id
 *   PageMoveComplete    -> move, prior_state.page = the old title,
 *                          created_redirect_page when a redirect was left
 *   LinksUpdateComplete -> page_rerender, when a page's links were refreshed
 *                          without a change of that page in this process
 *                          (a template it transcludes changed; the refresh
 *                          runs in the job queue)
 *
 * Every event is handed to Publisher::schedule(), which publishes it when
 * the change's transaction commits.  Nothing here can make an edit fail:
 * errors building an event are logged and the event is dropped.
 */

namespace MediaWiki\Extension\Freshet;

use ManualLogEntry;
use MediaWiki\Deferred\LinksUpdate\LinksDeletionUpdate;
use MediaWiki\Hook\ArticleRevisionVisibilitySetHook;
use MediaWiki\Hook\LinksUpdateCompleteHook;
use MediaWiki\Hook\PageMoveCompleteHook;
use MediaWiki\Logger\LoggerFactory;
use MediaWiki\MediaWikiServices;
use MediaWiki\Page\Hook\ArticleUndeleteHook;
use MediaWiki\Page\Hook\PageDeleteCompleteHook;
use MediaWiki\Page\Hook\RevisionUndeletedHook;
use MediaWiki\Page\ProperPageIdentity;
use MediaWiki\Permissions\Authority;
use MediaWiki\Revision\Hook\RevisionRecordInsertedHook;
use MediaWiki\Revision\RevisionRecord;
use MediaWiki\Storage\Hook\PageSaveCompleteHook;
use Throwable;
use Title;
use WikiPage;

class Hooks implements
	ArticleRevisionVisibilitySetHook,
	PageSaveCompleteHook,
	PageDeleteCompleteHook,
	ArticleUndeleteHook,
	PageMoveCompleteHook,
	LinksUpdateCompleteHook,
	RevisionRecordInsertedHook,
	RevisionUndeletedHook
{
	/**
	 * Revisions inserted or restored by this process: their links updates
	 * belong to a change with its own event, not to a rerender.  (The links
	 * update may run before the hook that publishes the change.)
	 * @var array<int,bool>
	 */
	private static $freshRevisions = [];
	/** @var array<int,bool> pages null-edited by this process */
	private static $quietPages = [];

	private static function guard( string $hook, callable $fn ): void {
		try {
			$fn();
		} catch ( Throwable $e ) {
			LoggerFactory::getInstance( 'Freshet' )->error(
				'{hook}: event not published: {error}',
				[ 'hook' => $hook, 'error' => $e->getMessage(), 'exception' => $e ] );
		}
	}

	/** @inheritDoc */
	public function onRevisionRecordInserted( $revisionRecord ) {
		self::$freshRevisions[$revisionRecord->getId()] = true;
	}

	/** @inheritDoc */
	public function onRevisionUndeleted( $revisionRecord, $oldPageID ) {
		self::$freshRevisions[$revisionRecord->getId()] = true;
	}

	/** @inheritDoc */
	public function onPageSaveComplete( $wikiPage, $user, $summary, $flags, $revisionRecord,
		$editResult
	) {
		// A null edit saves no revision: nothing changed, and the links
		// update it runs is not published as a rerender either.
		if ( !$revisionRecord || $editResult->isNullEdit() ||
			( defined( 'EDIT_NULL' ) && ( $flags & constant( 'EDIT_NULL' ) ) )
		) {
			self::$quietPages[$wikiPage->getId()] = true;
			return;
		}
		self::guard( __FUNCTION__, static function () use (
			$wikiPage, $user, $summary, $flags, $revisionRecord
		) {
			$title = Title::castFromPageIdentity( $wikiPage->getTitle() );
			$pageId = $revisionRecord->getPageId();
			self::$freshRevisions[$revisionRecord->getId()] = true;
			$kind = ( $flags & EDIT_NEW ) ? 'create' : 'edit';
			$event = EventFactory::pageChange( $kind, $title,
				EventFactory::pageOfRevision( $title, $pageId, $revisionRecord ),
				EventFactory::isoTime( $revisionRecord->getTimestamp() ),
				$user, EventFactory::revision( $revisionRecord ), $summary );
			if ( $kind === 'edit' && $revisionRecord->getParentId() ) {
				$event['prior_state'] = [
					'revision' => [ 'rev_id' => $revisionRecord->getParentId() ],
				];
			}
			Publisher::schedule( $pageId, $event );
		} );
	}

	/** @inheritDoc */
	public function onPageDeleteComplete( ProperPageIdentity $page, Authority $deleter,
		string $reason, int $pageID, RevisionRecord $deletedRev, ManualLogEntry $logEntry,
		int $archivedRevisionCount
	) {
		self::guard( __FUNCTION__, static function () use (
			$page, $deleter, $reason, $pageID, $deletedRev, $logEntry
		) {
			$title = Title::castFromPageIdentity( $page );
			// A suppressed delete hides what was deleted from all but
			// oversighters: publish only the ids.
			$suppressed = $logEntry->getType() === 'suppress';
			$isRedirect = $page instanceof WikiPage ? $page->isRedirect() : false;
			$event = EventFactory::pageChange( 'delete', $title,
				EventFactory::page( $title, $pageID, $isRedirect ),
				EventFactory::isoTime( $logEntry->getTimestamp() ),
				$suppressed ? null : $deleter->getUser(),
				EventFactory::revision( $deletedRev, !$suppressed ),
				$suppressed ? null : $reason );
			Publisher::schedule( $pageID, $event );
			if ( $suppressed ) {
				// The delete alone lets the worker keep the text
				// until an idle moment; this tells it to scrub.
				$event = EventFactory::pageChange( 'visibility_change', $title,
					EventFactory::page( $title, $pageID, $isRedirect ),
					EventFactory::isoTime( $logEntry->getTimestamp() ), null,
					EventFactory::revision( $deletedRev, false ) );
				Publisher::schedule( $pageID, $event );
			}
		} );
	}

	/** @inheritDoc */
	public function onArticleRevisionVisibilitySet( $title, $ids, $visibilityChangeMap ) {
		self::guard( __FUNCTION__, static function () use ( $title ) {
			// Revisions of a live page only: a deleted page's archived
			// revisions have no page id, and its delete event came before.
			$pageId = $title->getArticleID();
			$rev = $pageId ? MediaWikiServices::getInstance()->getRevisionLookup()
				->getRevisionByTitle( $title ) : null;
			if ( !$rev ) {
				return;
			}
			// Performer and comment stay out: they may be what was hidden.
			$event = EventFactory::pageChange( 'visibility_change', $title,
				EventFactory::pageOfRevision( $title, $pageId, $rev ),
				EventFactory::isoTime(), null, EventFactory::revision( $rev, false ) );
			Publisher::schedule( $pageId, $event );
		} );
	}

	/** @inheritDoc */
	public function onArticleUndelete( $title, $create, $comment, $oldPageId, $restoredPages ) {
		self::guard( __FUNCTION__, static function () use ( $title, $comment, $oldPageId ) {
			$services = MediaWikiServices::getInstance();
			$title = Title::castFromPageIdentity( $title );
			$pageId = $title->getArticleID( Title::READ_LATEST );
			$rev = $services->getRevisionLookup()->getRevisionByTitle( $title, 0,
				Title::READ_LATEST );
			if ( !$pageId || !$rev ) {
				throw new \RuntimeException( 'undeleted page ' . $title->getPrefixedDBkey() .
					' not found' );
			}
			$event = EventFactory::pageChange( 'undelete', $title,
				EventFactory::pageOfRevision( $title, $pageId, $rev ),
				EventFactory::isoTime(),
				\RequestContext::getMain()->getUser(),
				EventFactory::revision( $rev ), $comment );
			$event['prior_state'] = [ 'page' => [ 'page_id' => (int)$oldPageId ] ];
			Publisher::schedule( $pageId, $event );
		} );
	}

	/** @inheritDoc */
	public function onPageMoveComplete( $old, $new, $user, $pageid, $redirid, $reason,
		$revision
	) {
		self::guard( __FUNCTION__, static function () use (
			$old, $new, $user, $pageid, $redirid, $reason, $revision
		) {
			$oldTitle = Title::newFromLinkTarget( $old );
			$newTitle = Title::newFromLinkTarget( $new );
			$event = EventFactory::pageChange( 'move', $newTitle,
				EventFactory::pageOfRevision( $newTitle, (int)$pageid, $revision ),
				EventFactory::isoTime( $revision->getTimestamp() ),
				$user, EventFactory::revision( $revision ), $reason );
			$prior = [
				'page' => [
					'page_id' => (int)$pageid,
					'page_title' => $oldTitle->getPrefixedDBkey(),
					'namespace_id' => $oldTitle->getNamespace(),
				],
			];
			if ( $revision->getParentId() ) {
				$prior['revision'] = [ 'rev_id' => $revision->getParentId() ];
			}
			$event['prior_state'] = $prior;
			if ( $redirid ) {
				// The redirect itself was saved through PageSaveComplete,
				// which published its create event.
				$event['created_redirect_page'] = EventFactory::page( $oldTitle,
					(int)$redirid, true, $newTitle );
			}
			Publisher::schedule( (int)$pageid, $event );
		} );
	}

	/** @inheritDoc */
	public function onLinksUpdateComplete( $linksUpdate, $ticket ) {
		$config = MediaWikiServices::getInstance()->getMainConfig();
		if ( !$config->get( 'FreshetRerender' ) ) {
			return;
		}
		self::guard( __FUNCTION__, static function () use ( $linksUpdate ) {
			// A deletion clears the links of a page that is gone: the
			// delete event covers it.
			if ( $linksUpdate instanceof LinksDeletionUpdate ) {
				return;
			}
			$pageId = $linksUpdate->getPageId();
			$rev = $linksUpdate->getRevisionRecord();
			if ( !$pageId || isset( self::$quietPages[$pageId] ) ||
				( $rev && isset( self::$freshRevisions[$rev->getId()] ) )
			) {
				// The links update of a change that has its own event.
				return;
			}
			$title = Title::castFromPageIdentity( $linksUpdate->getTitle() );
			$event = EventFactory::rerender( $title, $pageId, $title->isRedirect(),
				'links_update' );
			Publisher::schedule( $pageId, $event );
		} );
	}
}
