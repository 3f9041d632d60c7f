<?php
// SPDX-License-Identifier: MIT
/**
 * Snippet: makes freshet-searchd's snippet HTML safe to insert raw.
 *
 * Special:Search and the APIs insert snippets as HTML.  freshet-searchd
 * already escapes the page's text and marks matches with
 * <span class="searchmatch">, but the extension does not rely on it: the
 * only markup let through is that exact opening tag and its closing tag,
 * balanced; everything else is decoded once and escaped again, so a stray
 * '<', an unknown tag or an attribute can only ever show as text.
 */

namespace MediaWiki\Extension\Freshet;

class Snippet {
	private const OPEN = '<span class="searchmatch">';
	private const CLOSE = '</span>';

	/**
	 * @param string|null $html a snippet as freshet-searchd gives it
	 * @return string safe HTML: escaped text with balanced searchmatch spans
	 */
	public static function sanitize( ?string $html ): string {
		if ( $html === null || $html === '' ) {
			return '';
		}
		$parts = preg_split( '~(<span class="searchmatch">|</span>)~', $html, -1,
			PREG_SPLIT_DELIM_CAPTURE );
		$out = '';
		$open = 0;
		foreach ( $parts as $part ) {
			if ( $part === self::OPEN ) {
				$out .= self::OPEN;
				$open++;
			} elseif ( $part === self::CLOSE && $open > 0 ) {
				$out .= self::CLOSE;
				$open--;
			} else {
				$text = html_entity_decode( $part, ENT_QUOTES | ENT_HTML5, 'UTF-8' );
				$out .= htmlspecialchars( $text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8' );
			}
		}
		return $out . str_repeat( self::CLOSE, $open );
	}
}
