// Files whose format records when they were written, rewritten with the layer's SOURCE_DATE_EPOCH
// instead (what Debian's strip-nondeterminism does for archives). Only formats whose integrity
// can be recomputed here, and only when the file checks out as that format first: anything else is
// left exactly as it is. Pure functions over bytes; seal.ts applies them to files made during the
// build.
//
// Java KeyStore (JKS), e.g. Debian's /etc/ssl/certs/java/cacerts, made by ca-certificates-java's
// keytool at install time: every entry carries its creation time in milliseconds, and the file
// ends with a SHA-1 over the store password (UTF-16BE), the words "Mighty Aphrodite" and everything
// before it. Entries are clamped to the epoch and the digest recomputed with the same password.
import { createHash } from 'node:crypto';

const JKS_MAGIC = 0xfeedfeed;
/** The password of Debian's and the JDK's cacerts; the digest tells whether a store uses it. */
export const JKS_DEFAULT_PASSWORDS = ['changeit'];

function jksDigest(body: Buffer, password: string): Buffer {
  const pw = Buffer.alloc(password.length * 2);
  for (let i = 0; i < password.length; i++) pw.writeUInt16BE(password.charCodeAt(i), i * 2);
  return createHash('sha1').update(pw).update('Mighty Aphrodite', 'utf8').update(body).digest();
}

/** Offsets of every entry's timestamp in a JKS (version 1 or 2), or undefined if it does not parse. */
function jksTimestamps(buf: Buffer): number[] | undefined {
  if (buf.length < 12 + 20 || buf.readUInt32BE(0) !== JKS_MAGIC) return undefined;
  const version = buf.readUInt32BE(4);
  if (version !== 1 && version !== 2) return undefined;
  const end = buf.length - 20;
  let at = 8;
  const need = (n: number) => {
    if (at + n > end) throw new RangeError('truncated');
  };
  const u32 = () => {
    need(4);
    const v = buf.readUInt32BE(at);
    at += 4;
    return v;
  };
  const utf = () => {
    need(2);
    const n = buf.readUInt16BE(at);
    at += 2 + n;
    need(0);
  };
  const blob = () => {
    const n = u32();
    need(n);
    at += n;
  };
  const stamps: number[] = [];
  try {
    const count = u32();
    for (let i = 0; i < count; i++) {
      const tag = u32();
      utf(); // alias
      need(8);
      stamps.push(at);
      at += 8;
      if (tag === 1) {
        blob(); // protected private key
        const chain = u32();
        for (let c = 0; c < chain; c++) {
          if (version === 2) utf(); // certificate type
          blob();
        }
      } else if (tag === 2) {
        if (version === 2) utf();
        blob();
      } else {
        return undefined;
      }
    }
  } catch {
    return undefined;
  }
  return at === end ? stamps : undefined;
}

/**
 * A Java KeyStore with every entry's time at most `epoch` (seconds) and its digest recomputed, or
 * undefined when `buf` is not a JKS whose digest one of `passwords` verifies (left alone then).
 */
export function normalizeJks(buf: Buffer, epoch: number, passwords = JKS_DEFAULT_PASSWORDS): Buffer | undefined {
  const stamps = jksTimestamps(buf);
  if (!stamps) return undefined;
  const body = buf.subarray(0, buf.length - 20);
  const password = passwords.find((p) => jksDigest(body, p).equals(buf.subarray(buf.length - 20)));
  if (password === undefined) return undefined;
  const out = Buffer.from(buf);
  const limit = BigInt(epoch) * 1000n;
  for (const at of stamps) if (out.readBigInt64BE(at) > limit) out.writeBigInt64BE(limit, at);
  jksDigest(out.subarray(0, out.length - 20), password).copy(out, out.length - 20);
  return out;
}

/** Whether a file's first bytes say it may be a format normalize() knows. */
export function mayNormalize(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32BE(0) === JKS_MAGIC;
}

/** The file's bytes normalized, or undefined when there is nothing to change. */
export function normalize(buf: Buffer, epoch: number): Buffer | undefined {
  const out = normalizeJks(buf, epoch);
  return out && !out.equals(buf) ? out : undefined;
}
