// Package passport owns request passports on demand: the "passport"
// built-in recognises a trusted caller's debug header (and strips an
// untrusted caller's before it can reach an origin), "passport_header"
// returns the request's passport to that caller as a response header when
// it is short, and Ring keeps the passports of those requests for the
// admin endpoint GET /admin/passports/{request-id}. Who is trusted is the
// gateway's one trust rule (package trust).
package passport
