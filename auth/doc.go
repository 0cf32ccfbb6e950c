// Package auth holds Herald's authenticators and its topic ACL.
//
// # Authentication
//
// Chain is the broker.Authenticator. It tries, in order: a verified TLS
// client certificate's CN on a listener with tls.cn_as_username; anonymous
// (no username and no password), admitted only with auth.allow_anonymous;
// then the configured methods — JWT, password file, HTTP hook — the first
// that recognises the credentials deciding. Credentials nobody recognises
// are refused. Refusals:
//
//	bad credentials, expired or forged token      v5 0x86   3.1.1 4
//	anonymous when not allowed                     v5 0x87   3.1.1 5
//	HTTP hook unreachable, timed out or confused   v5 0x88   3.1.1 3
//
// With allow_anonymous and no method configured (the loopback default),
// nothing is checked and a username is taken as sent, unless a listener
// takes usernames from client certificates: then a username that no
// method can check is refused.
//
// Password file (auth.password_file): one `username:bcrypt-hash` per line,
// '#' comments and blank lines allowed; errors name the file and line.
// `herald passwd FILE USER` adds or changes a user, `-D` deletes one; the
// file is replaced atomically so that a SIGHUP never reads half of it. A
// username not in the file is left to the next method.
//
// JWT (auth.jwt): the token is the MQTT password. HS256/384/512 with the
// secret in hmac_secret_file, or RS*/PS*/ES*/EdDSA with the PEM public
// keys in public_key_file; other algorithms, "none" included, are refused.
// "exp" is required and enforced: at CONNECT, and by the broker, which
// closes the connection (v5 DISCONNECT 0x87) when it passes. "nbf" and
// "iat" may be up to 30s in the future. The claim username_claim (default
// "sub") becomes the username; the MQTT username may be empty or equal to
// it, anything else is refused. If acl_claim is set and the token has that
// claim, it holds the connection's own rules as
// {"pub": [filters], "sub": [filters], "all": [filters]}.
//
// HTTP hook (auth.http_hook): each CONNECT that reaches it is POSTed as
// {"clientid", "username", "password", "remote_addr", "listener"} (and
// "cert_cn" when set). 200 with {"allow": true} admits, optionally with
// {"acl": {"pub": [...], "sub": [...]}}; 200 with {"allow": false}, 401 or
// 403 refuses; anything else is "server unavailable". Both answers are
// cached for cache_ttl, keyed by a hash of the credentials.
//
// # Authorization
//
// Authorizer is the broker.Authorizer. The operator's rules are acl.rules
// from the configuration, then the rules of acl_file, evaluated in that
// order: the first rule that matches decides, else acl.default. %u and %c
// in a filter stand for the username and client id. A publish matches a
// rule whose filter matches the topic. A subscription matches an allow
// rule whose filter covers it and a deny rule whose filter overlaps it
// (`deny subscribe secret/#` refuses `+/#` too), since the ACL is checked
// only when subscribing.
//
// A connection whose JWT or hook answer carried rules may use only the
// topics those rules allow, and the operator's deny rules still apply on
// top: if the first operator rule that matches is a deny, the action is
// denied. The rules live with the connection (see Grants).
//
// A denied subscription gets SUBACK 0x87 (3.1.1: 0x80); a denied publish
// is dropped, with PUBACK/PUBREC 0x87 in v5.
//
// # ACL file
//
// One rule per line, '#' comments and blank lines allowed:
//
//	allow|deny  publish|subscribe|all  FILTER  [user=NAME]  [client=ID]
//
// read, write and readwrite are accepted for subscribe, publish and all.
// A filter or name with spaces is written as a quoted Go string. Example:
//
//	deny  subscribe $SYS/#
//	allow all       users/%u/#
//	allow subscribe rooms/+/messages
//	allow publish   sensors/%c/data   client=sensor-1
//	allow all       #                 user=admin
//
// # Reload
//
// On SIGHUP `herald serve` calls Service.Reload: the password file, the ACL
// file and the JWT key file are read again and the hook's cache is
// dropped. A file that fails to load is reported and its previous contents
// stay in force. Connected clients keep their session; new ACL rules apply
// from their next publish or subscribe.
package auth
