#ifndef FETCHD_HTTP_STATUS_H
#define FETCHD_HTTP_STATUS_H

/* The reason phrase of status (RFC 9110 section 15, 418 of RFC 2324, 508
 * of RFC 5842): a static string, "" for a code without one. */
const char *http_reason_phrase(long status);

#endif
