// Vault format 1 (docs/vault-format.md) with WebCrypto: keys, the file header and the segments.
// The Python reference client (clients/vault/crypto.py) implements the same format; each reads
// what the other writes. No third-party code: everything here is the browser's own crypto.subtle.

const subtle = crypto.subtle;
export const FORMAT = 1;
export const KDF_NAME = "PBKDF2-SHA-256";
export const ITERATIONS = 600000;
export const SEGMENT = 65536;
export const HEADER = 72;
export const TAG = 16;
export const STORED = SEGMENT + TAG;
const MAGIC = new TextEncoder().encode("CSVAULT\0");
const VERIFIER_LABEL = new TextEncoder().encode("cloudstorage vault verifier v1");

export class VaultError extends Error {}
export class WrongPassphrase extends VaultError {
  constructor() {
    super("Wrong passphrase for this vault.");
  }
}
export class Tampered extends VaultError {}

export const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
export const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
export const b64url = (bytes) => b64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
export const unb64url = (text) => unb64(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));

async function passphraseKey(passphrase, kdf) {
  if (kdf.name !== KDF_NAME) throw new VaultError(`Unknown key derivation ${kdf.name}.`);
  const base = await subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: unb64(kdf.salt), iterations: kdf.iterations },
    base,
    { name: "AES-KW", length: 256 },
    false,
    ["wrapKey", "unwrapKey"],
  );
}

async function verifierOf(hmacKey) {
  return b64(await subtle.sign("HMAC", hmacKey, VERIFIER_LABEL));
}

// The vault key, unwrapped twice: as AES-KW (to wrap content keys) and as HMAC (the verifier).
// Neither can be exported: the raw vault key never exists in script memory after creation.
async function unwrapVaultKey(kek, wrapped) {
  const wrapping = await subtle.unwrapKey("raw", wrapped, kek, "AES-KW", "AES-KW", false, ["wrapKey", "unwrapKey"]);
  const hmac = await subtle.unwrapKey("raw", wrapped, kek, "AES-KW", { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return { wrapping, hmac };
}

async function wrapFields(rawVaultKey, passphrase, iterations) {
  const kdf = { name: KDF_NAME, iterations, salt: b64(crypto.getRandomValues(new Uint8Array(16))) };
  const kek = await passphraseKey(passphrase, kdf);
  const transient = await subtle.importKey("raw", rawVaultKey, "AES-KW", true, ["wrapKey"]);
  const wrapped = await subtle.wrapKey("raw", transient, kek, "AES-KW");
  const hmac = await subtle.importKey("raw", rawVaultKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return { kdf, wrapped_key: b64(wrapped), verifier: await verifierOf(hmac) };
}

/** The fields of a new vault record for `passphrase` (a random vault key, wrapped). */
export async function newVault(passphrase) {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  try {
    return await wrapFields(raw, passphrase, ITERATIONS);
  } finally {
    raw.fill(0);
  }
}

/** The unlocked vault ({wrapping, hmac} CryptoKeys) from its record; WrongPassphrase if not. */
export async function unlock(record, passphrase) {
  if (record.format !== FORMAT) throw new VaultError(`Vault format ${record.format} is newer than this page knows.`);
  const kek = await passphraseKey(passphrase, record.kdf);
  let keys;
  try {
    keys = await unwrapVaultKey(kek, unb64(record.wrapped_key));
  } catch (e) {
    throw new WrongPassphrase();
  }
  if ((await verifierOf(keys.hmac)) !== record.verifier) throw new WrongPassphrase();
  return keys;
}

/** Fields for PUT /vaults/{id}/key: the vault key wrapped by `newPassphrase` (a fresh salt). The
 * raw key must pass through here once, so it is unwrapped extractable and dropped at once. */
export async function rewrap(record, passphrase, newPassphrase) {
  await unlock(record, passphrase);
  const kek = await passphraseKey(passphrase, record.kdf);
  const key = await subtle.unwrapKey("raw", unb64(record.wrapped_key), kek, "AES-KW", "AES-KW", true, ["wrapKey"]);
  const raw = new Uint8Array(await subtle.exportKey("raw", key));
  try {
    return await wrapFields(raw, newPassphrase, Math.max(record.kdf.iterations, ITERATIONS));
  } finally {
    raw.fill(0);
  }
}

export function cipherSize(plainSize) {
  return HEADER + plainSize + Math.max(1, Math.ceil(plainSize / SEGMENT)) * TAG;
}

export function segmentCount(size) {
  const body = size - HEADER;
  if (body < TAG) throw new Tampered("The file is too short to be a vault file: it is truncated.");
  const count = Math.ceil(body / STORED);
  const last = body - (count - 1) * STORED - TAG;
  if (last < 0 || (last === 0 && count > 1)) throw new Tampered("The file's size is not that of a vault file: it was truncated.");
  return count;
}

export function plainSize(size) {
  try {
    return size - HEADER - segmentCount(size) * TAG;
  } catch (e) {
    return null;
  }
}

async function newHeader(vault) {
  const contentKey = await subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
  const raw = new Uint8Array(HEADER);
  raw.set(MAGIC, 0);
  raw[8] = FORMAT;
  new DataView(raw.buffer).setUint32(12, SEGMENT);
  raw.set(crypto.getRandomValues(new Uint8Array(16)), 16);
  raw.set(new Uint8Array(await subtle.wrapKey("raw", contentKey, vault.wrapping, "AES-KW")), 32);
  return { raw, contentKey };
}

/** The header's content key: unwrapped by the vault, or imported from a link's raw key. */
export async function parseHeader(bytes, { vault, rawKey } = {}) {
  const raw = new Uint8Array(bytes).slice(0, HEADER);
  if (raw.length < HEADER || !MAGIC.every((b, i) => raw[i] === b)) throw new VaultError("This is not a vault file (its header is missing or damaged).");
  if (raw[8] !== FORMAT) throw new VaultError(`Vault file format ${raw[8]} is unknown to this page.`);
  if (new DataView(raw.buffer).getUint32(12) !== SEGMENT) throw new VaultError("The vault file's segment size is not that of format 1.");
  let contentKey;
  if (rawKey) {
    contentKey = await subtle.importKey("raw", rawKey, "AES-GCM", false, ["decrypt"]);
  } else {
    try {
      contentKey = await subtle.unwrapKey("raw", raw.slice(32, 72), vault.wrapping, "AES-KW", "AES-GCM", true, ["encrypt", "decrypt"]);
    } catch (e) {
      throw new Tampered("The file's key does not open with this vault's key (another vault's file, or a tampered header).");
    }
  }
  return { raw, contentKey };
}

function nonceAndAad(header, index, last) {
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  view.setBigUint64(0, BigInt(index));
  nonce[11] = last ? 1 : 0;
  const aad = new Uint8Array(HEADER + 9);
  aad.set(header.raw, 0);
  new DataView(aad.buffer).setBigUint64(HEADER, BigInt(index));
  aad[HEADER + 8] = last ? 1 : 0;
  return { name: "AES-GCM", iv: nonce, additionalData: aad };
}

async function decryptSegment(header, index, last, stored) {
  try {
    return new Uint8Array(await subtle.decrypt(nonceAndAad(header, index, last), header.contentKey, stored));
  } catch (e) {
    throw new Tampered(`Segment ${index} failed its integrity check: the file was tampered with, reordered or truncated.`);
  }
}

/** The ciphertext of `file` (a Blob) as a Blob, segment by segment; onProgress(done, total). */
export async function encryptBlob(vault, file, onProgress) {
  const header = await newHeader(vault);
  const count = Math.max(1, Math.ceil(file.size / SEGMENT));
  const parts = [header.raw];
  for (let index = 0; index < count; index++) {
    const plain = await file.slice(index * SEGMENT, (index + 1) * SEGMENT).arrayBuffer();
    parts.push(new Uint8Array(await subtle.encrypt(nonceAndAad(header, index, index === count - 1), header.contentKey, plain)));
    if (onProgress && index % 64 === 0) onProgress(index * SEGMENT, file.size);
  }
  const blob = new Blob(parts, { type: "application/octet-stream" });
  if (blob.size !== cipherSize(file.size)) throw new VaultError("The file changed while it was being encrypted.");
  return blob;
}

/** The whole plaintext of a vault file's bytes, every segment verified before any is returned. */
export async function decryptAll(bytes, keys) {
  const data = new Uint8Array(bytes);
  const count = segmentCount(data.length);
  const header = await parseHeader(data, keys);
  const out = new Uint8Array(data.length - HEADER - count * TAG);
  for (let index = 0; index < count; index++) {
    const start = HEADER + index * STORED;
    const plain = await decryptSegment(header, index, index === count - 1, data.subarray(start, Math.min(start + STORED, data.length)));
    out.set(plain, index * SEGMENT);
  }
  return out;
}

/** The raw content key of a vault file (for a public link's fragment), from its first bytes. */
export async function contentKeyOf(headerBytes, vault) {
  const header = await parseHeader(headerBytes, { vault });
  return new Uint8Array(await subtle.exportKey("raw", header.contentKey));
}
