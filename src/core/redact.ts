// Secrets never echoed: every password in a URL-like text masked, for every message and log line
// (log.ts) and every URL option's error (input/urls.ts).

const MASK = '***';
// The user part of scheme://user[:password]@ (what redactSecrets masks the password of).
const SCHEME_USERINFO = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/?#@'"]*)@/g;
// user:password@host:path (what someone may try as an rsync-over-ssh destination).
const SSH_USERINFO = /(^|[\s'"(=])([A-Za-z0-9._-]+):([^\s/@'"]+)@(?=[A-Za-z0-9[][^\s:'"]*:)/g;

/**
 * Every password in `text` masked: that of `scheme://user:password@...` and of the
 * `user:password@host:path` form; a user name alone is left (it is not a secret). Every message
 * and log line goes through this (log.ts), so a password given anywhere is never repeated.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(SCHEME_USERINFO, (_all, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return colon < 0 ? `${scheme}${info}@` : `${scheme}${info.slice(0, colon)}:${MASK}@`;
    })
    .replace(SSH_USERINFO, (_all, before: string, user: string) => `${before}${user}:${MASK}@`);
}
