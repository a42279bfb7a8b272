#ifndef FETCHD_CHARSET_H
#define FETCHD_CHARSET_H

#include <stdbool.h>
#include <stddef.h>

/* The WHATWG name of a charset label ("latin1" -> "windows-1252",
 * "utf8" -> "utf-8", "ISO-8859-1" -> "windows-1252", "us-ascii" ->
 * "windows-1252", "shift_jis" -> "shift_jis", ...), per the WHATWG
 * Encoding Standard's label table; NULL for an unknown label. The result is
 * a static string. */
const char *charset_whatwg_name(const char *label);

/* The apparent encoding of a body, as a lower-case WHATWG name (static
 * string): a BOM; then <meta charset> or <meta http-equiv="Content-Type"
 * content="...charset=..."> in the first 1024 bytes (the HTML prescan);
 * then an XML declaration's encoding; then "utf-8" if the bytes are valid
 * UTF-8 (pure ASCII included); then
 * libuchardet on a bounded prefix (at most 64 KiB), mapped to WHATWG names;
 * then "windows-1252". Linear in the prefix it looks at; never reads past
 * len. *bom_len is set to the BOM's length (0 when none). */
const char *charset_detect(const unsigned char *body, size_t len, size_t *bom_len);

/* Decode body from charset (a label or WHATWG name) to UTF-8, the WHATWG
 * way: iso-8859-1, latin1 and us-ascii decode as windows-1252; invalid or
 * truncated sequences become U+FFFD; a BOM is dropped (a UTF-8, UTF-16LE or
 * UTF-16BE BOM overrides the charset, as in WHATWG "decode"). Returns a
 * malloc'd NUL-terminated buffer (it may hold NUL bytes from the body: use
 * *out_len), or NULL when the label is unknown (charset_whatwg_name gives
 * NULL) or on out of memory. Linear time. */
char *charset_decode(const unsigned char *body, size_t len, const char *charset, size_t *out_len);

/* Is the buffer valid UTF-8 (RFC 3629: no overlongs, surrogates or code
 * points above U+10FFFF)? */
bool charset_utf8_valid(const unsigned char *s, size_t len);

/* Copy bytes, replacing each invalid UTF-8 sequence with U+FFFD.
 * malloc'd, NUL-terminated, length in *out_len; NULL on out of memory. */
char *charset_utf8_sanitize(const unsigned char *s, size_t len, size_t *out_len);

/* fetchd's one policy for strings from upstream that go into JSON (header
 * names and values, reasons, URLs, cookies, Link parameters) and for error
 * messages that quote them (README, "Where SPEC and fetchd differ"): bytes
 * that are valid UTF-8 are kept as they are; a string that is not is read
 * as a whole as ISO-8859-1, the historical charset of header fields (RFC
 * 9110 section 5.5), decoded as windows-1252 the WHATWG way, so "caf\xe9"
 * becomes "café". Response bodies are not strings of this kind: they are
 * decoded by their charset (charset_decode).
 * Returns s itself when it is valid UTF-8 (*copy = NULL), else the repaired
 * string, malloc'd and NUL-terminated, which *copy also points to for the
 * caller to free; length in *out_len. NULL on out of memory. */
const char *charset_repair_utf8(const char *s, size_t len, size_t *out_len, char **copy);

#endif
